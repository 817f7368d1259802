/*
 * render.c: the settings table and a config as text: the effective
 * configuration as TOML (`ignis config --dump`), docs/CONFIG.md (`ignis
 * config --markdown`) and the options part of --help.
 *
 * docs/CONFIG.md is this file's output, committed; test_config checks that
 * the committed copy is current. Everything written here depends only on the
 * table (never on the machine, the environment or the date), so that the
 * check is exact.
 */
#include "config/config_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A TOML basic string. */
static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04X", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* The shortest text that reads back as the same double, always with a '.'
 * or an exponent so TOML reads it as a float. */
static void put_float(FILE *f, double v) {
    char buf[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(f, "%.1f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
    if (!strpbrk(buf, ".eE")) fputs(".0", f);
}

static void put_list(FILE *f, const char *const *items, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        put_string(f, items[i]);
    }
    fputc(']', f);
}

/* A value as TOML. */
static void put_value(FILE *f, const ig_setting *s, const ig__config_value *v) {
    switch (s->type) {
    case IG_SETTING_TYPE_INT:
        fprintf(f, "%" PRId64, v->i);
        break;
    case IG_SETTING_TYPE_FLOAT:
        put_float(f, v->f);
        break;
    case IG_SETTING_TYPE_BOOL:
        fputs(v->b ? "true" : "false", f);
        break;
    case IG_SETTING_TYPE_STRING:
    case IG_SETTING_TYPE_PATH:
    case IG_SETTING_TYPE_ENUM:
        put_string(f, v->s);
        break;
    case IG_SETTING_TYPE_LIST:
        put_list(f, (const char *const *)v->list, v->n_list);
        break;
    }
}

/* Finish a memstream into a string, or NULL. */
static char *finish(FILE *f, char **buf) {
    if (!f) return NULL;
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0) bad = true;
    if (bad) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

char *ig_config_dump(const ig_config *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const ig_setting *all = ig_settings();
    fprintf(f, "# The effective configuration; each value's source follows it.\n");
    fprintf(f, "# Config file: %s\n", cfg->file ? cfg->file : "(none)");
    const char *sec = NULL;
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const ig_setting *s = &all[i];
        const ig__config_value *v = &cfg->vals[i];
        if (!sec || strcmp(sec, s->section)) {
            sec = s->section;
            fprintf(f, "\n[%s]\n", sec);
        }
        /* Value into a line buffer first, to align the comments. */
        char *line = NULL;
        size_t line_len = 0;
        FILE *lf = open_memstream(&line, &line_len);
        if (!lf) {
            fclose(f);
            free(buf);
            return NULL;
        }
        fprintf(lf, "%s = ", s->key);
        put_value(lf, s, v);
        if (!(line = finish(lf, &line))) {
            fclose(f);
            free(buf);
            return NULL;
        }
        fprintf(f, "%-40s # %s%s%s\n", line, ig_config_src_name(v->src), *v->origin ? " " : "",
                v->origin);
        free(line);
    }
    return finish(f, &buf);
}

/* The type column of the docs. */
static void put_type(FILE *f, const ig_setting *s) {
    switch (s->type) {
    case IG_SETTING_TYPE_STRING:
        fputs("string", f);
        break;
    case IG_SETTING_TYPE_PATH:
        fputs("path", f);
        break;
    case IG_SETTING_TYPE_INT:
        fprintf(f, "integer, %" PRId64 " to %" PRId64, s->min, s->max);
        break;
    case IG_SETTING_TYPE_FLOAT:
        fprintf(f, "number, %g to %g", s->fmin, s->fmax);
        break;
    case IG_SETTING_TYPE_BOOL:
        fputs("boolean", f);
        break;
    case IG_SETTING_TYPE_ENUM:
        fputs("one of ", f);
        for (int i = 0; s->choices[i]; i++) fprintf(f, "%s`%s`", i ? ", " : "", s->choices[i]);
        break;
    case IG_SETTING_TYPE_LIST:
        fputs("list of strings", f);
        break;
    }
}

/* A default as TOML, from the table's text. */
static void put_default(FILE *f, const ig_setting *s) {
    switch (s->type) {
    case IG_SETTING_TYPE_INT:
    case IG_SETTING_TYPE_BOOL:
        fputs(s->def, f);
        break;
    case IG_SETTING_TYPE_FLOAT:
        put_float(f, strtod(s->def, NULL));
        break;
    case IG_SETTING_TYPE_LIST:
        fputs("[]", f);
        break;
    default:
        put_string(f, s->def);
        break;
    }
}

static void put_flags(FILE *f, const ig_setting *s, bool md) {
    const char *q = md ? "`" : "";
    if (!s->flag) {
        fputs(md ? "—" : "", f);
        return;
    }
    if (s->short_flag) fprintf(f, "%s-%c%s, ", q, s->short_flag, q);
    if (s->type == IG_SETTING_TYPE_BOOL)
        fprintf(f, "%s--%s%s, %s--no-%s%s", q, s->flag, q, q, s->flag, q);
    else
        fprintf(f, "%s--%s %s%s", q, s->flag, s->metavar ? s->metavar : "VALUE", q);
    if (s->type == IG_SETTING_TYPE_LIST) fputs(" (repeatable)", f);
}

static const char MD_INTRO[] =
    "# Configuration\n"
    "\n"
    "<!-- Generated by `ignis config --markdown` from the settings table in\n"
    "     src/config/settings.c. Do not edit: change the table, then run\n"
    "     `build/ignis config --markdown > docs/CONFIG.md`. -->\n"
    "\n"
    "Every setting can be given in three ways besides its default; where several\n"
    "are given, the later in this list wins:\n"
    "\n"
    "1. the default (below);\n"
    "2. a TOML file, read only when named by `--config FILE` or by the variable\n"
    "   `IGNIS_CONFIG` (the flag wins);\n"
    "3. an environment variable `IGNIS_*`;\n"
    "4. a command-line flag.\n"
    "\n"
    "`ignis config [--config FILE] [flags...] --dump` prints the configuration\n"
    "that results, as TOML, with each value's source (`default`, `file`, `env`,\n"
    "`flag`). Its output reads back as a config file.\n"
    "\n"
    "Rules:\n"
    "\n"
    "- In the file, settings live in sections (`[server]`, `[model]`, ...). An\n"
    "  unknown section or key is an error, as is a value of the wrong type (a\n"
    "  number where a string is expected, or the reverse).\n"
    "- A value out of range, or a word not among a setting's choices, is an\n"
    "  error naming the setting and where it was given:\n"
    "  `ignis.toml:12: [cache] block_size: 0 is out of range [1, 256]`,\n"
    "  `IGNIS_PORT: 'abc' is not an integer`, `--port: 70000 is out of range\n"
    "  [0, 65535]`.\n"
    "- Booleans: `true`/`false` in the file; `--flag`, `--no-flag` or\n"
    "  `--flag=false` on the command line; `true`, `false`, `1`, `0`, `yes`, `no`,\n"
    "  `on`, `off` in the environment.\n"
    "- Lists: an array of strings in the file; a comma-separated value in the\n"
    "  environment; a repeated flag on the command line. A source that gives a\n"
    "  list replaces the whole list.\n"
    "- Relative paths in the file are relative to the file's directory; from\n"
    "  flags and the environment, to the working directory. `~/` is `$HOME`.\n"
    "- An `IGNIS_*` variable that is not a setting (nor one of the other\n"
    "  variables listed at the end) draws a warning and is ignored.\n"
    "- The file is TOML 1.0 without arrays of tables and dates. Syntax errors\n"
    "  give the line and column: `ignis.toml:3:8: expected a value, found end of\n"
    "  line`.\n";

char *ig_config_markdown(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const ig_setting *all = ig_settings();
    size_t n = ig_settings_count();
    fputs(MD_INTRO, f);
    const char *sec = NULL;
    for (size_t i = 0; i < n; i++) {
        const ig_setting *s = &all[i];
        if (!sec || strcmp(sec, s->section)) {
            sec = s->section;
            fprintf(f, "\n## [%s]\n\n", sec);
            fputs("| Key | Default | Type | Flag | Environment | Description |\n", f);
            fputs("|---|---|---|---|---|---|\n", f);
        }
        fprintf(f, "| `%s` | `", s->key);
        put_default(f, s);
        fputs("` | ", f);
        put_type(f, s);
        fputs(" | ", f);
        put_flags(f, s, true);
        fprintf(f, " | `%s` | %s |\n", s->env, s->help);
    }
    fputs("\n## Other environment variables\n\n"
          "These `IGNIS_*` variables are not settings; they draw no warning.\n\n"
          "| Variable | Use |\n|---|---|\n",
          f);
    const char *const *o = ig_config_other_env();
    for (size_t i = 0; o[i]; i += 2) fprintf(f, "| `%s` | %s |\n", o[i], o[i + 1]);
    fputs("\n## A file with every default\n\n```toml\n", f);
    sec = NULL;
    for (size_t i = 0; i < n; i++) {
        const ig_setting *s = &all[i];
        if (!sec || strcmp(sec, s->section)) {
            fprintf(f, "%s[%s]\n", sec ? "\n" : "", s->section);
            sec = s->section;
        }
        fprintf(f, "%s = ", s->key);
        put_default(f, s);
        fputc('\n', f);
    }
    fputs("```\n", f);
    return finish(f, &buf);
}

/* Write `text` wrapped at `width`, each line indented by `indent`. */
static void wrap(FILE *f, const char *text, int indent, int width) {
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (!w) break;
        if (col == 0) {
            col = fprintf(f, "%*s", indent, "");
        } else if (col + 1 + (int)w > width) {
            fputc('\n', f);
            col = fprintf(f, "%*s", indent, "");
        } else {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, w, f);
        col += (int)w;
        p += w;
    }
    if (col) fputc('\n', f);
}

char *ig_config_help(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const ig_setting *all = ig_settings();
    const char *sec = NULL;
    fputs("  --config FILE\n        read settings from this TOML file (also $IGNIS_CONFIG)\n", f);
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const ig_setting *s = &all[i];
        if (!s->flag) continue;
        if (!sec || strcmp(sec, s->section)) {
            sec = s->section;
            fprintf(f, "\n[%s]\n", sec);
        }
        fputs("  ", f);
        put_flags(f, s, false);
        fputc('\n', f);
        char *more = NULL;
        char def[160];
        FILE *df = fmemopen(def, sizeof def, "w");
        if (df) {
            put_default(df, s);
            fputc('\0', df);
            fclose(df);
        } else {
            def[0] = '\0';
        }
        def[sizeof def - 1] = '\0';
        if (asprintf(&more, "%s [default %s; %s]", s->help, def, s->env) < 0) more = NULL;
        wrap(f, more ? more : s->help, 8, 79);
        free(more);
    }
    return finish(f, &buf);
}
