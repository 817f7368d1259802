/* cmd_config.c: `ignis config`: print the effective configuration, or the
 * settings' documentation (docs/CONFIG.md is this command's --markdown). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/settings.h"

extern char **environ;

static const char HELP[] =
    "usage: ignis config [--config FILE] [setting flags...] [--dump | --markdown]\n"
    "\n"
    "Resolve the settings as a server would (defaults < config file < IGNIS_*\n"
    "environment < flags) and print the result as TOML with each value's source\n"
    "(--dump, the default), or print the settings' documentation as Markdown\n"
    "(--markdown: docs/CONFIG.md).\n"
    "  --dump        print the effective configuration (default)\n"
    "  --markdown    print docs/CONFIG.md\n"
    "  -h, --help    this help\n"
    "\n"
    "setting flags:\n";

enum { OPT_DUMP = 1, OPT_MARKDOWN, OPT_HELP };

static ig_status on_option(void *user, int id, const char *arg, ig_error *err) {
    (void)arg;
    (void)err;
    int *action = user;
    if (id == OPT_HELP || *action != OPT_HELP) *action = id;
    return IG_OK;
}

int ig_cli_config(int argc, char **argv) {
    static const ig_config_option extra[] = {
        {"dump", 0, false, OPT_DUMP},
        {"markdown", 0, false, OPT_MARKDOWN},
        {"help", 'h', false, OPT_HELP},
    };
    int action = OPT_DUMP, first = 0, rc = 1;
    char *text = NULL;
    ig_error err = {0};
    ig_config *cfg = ig_config_new_defaults();
    if (!cfg) {
        ig_cli_fail("config: out of memory");
        return 1;
    }
    ig_status st =
        ig_config_resolve_ex(cfg, argc, argv, (const char *const *)environ, extra,
                             sizeof extra / sizeof extra[0], on_option, &action, &first, &err);
    if (action == OPT_HELP) {
        char *opts = ig_config_help();
        fputs(HELP, stdout);
        if (opts) fputs(opts, stdout);
        free(opts);
        rc = 0;
        goto cleanup;
    }
    if (action == OPT_MARKDOWN) {
        text = ig_config_markdown();
    } else {
        if (st != IG_OK) {
            ig_cli_fail("config: %s", err.message);
            goto cleanup;
        }
        if (first < argc) {
            ig_cli_fail("config: unexpected argument '%s' (try --help)", argv[first]);
            rc = 2;
            goto cleanup;
        }
        for (size_t i = 0; i < ig_config_n_warnings(cfg); i++)
            fprintf(stderr, "ignis: warning: %s\n", ig_config_warning(cfg, i));
        text = ig_config_dump(cfg);
    }
    if (!text) {
        ig_cli_fail("config: out of memory");
        goto cleanup;
    }
    fputs(text, stdout);
    rc = 0;
cleanup:
    free(text);
    ig_config_free(cfg);
    return rc;
}
