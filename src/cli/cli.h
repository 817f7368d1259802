/* cli.h: the `ignis` subcommands (each returns the process exit code). */
#ifndef IG_CLI_CLI_H
#define IG_CLI_CLI_H

int ig_cli_run(int argc, char **argv);
int ig_cli_tokenize(int argc, char **argv);
int ig_cli_info(int argc, char **argv);
int ig_cli_gen_model(int argc, char **argv);
int ig_cli_bench(int argc, char **argv);
int ig_cli_bench_http(int argc, char **argv); /* `ignis bench --url` */
int ig_cli_serve(int argc, char **argv);
int ig_cli_config(int argc, char **argv);

/* Print "ignis: <message>" to stderr (one line). */
void ig_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a whole-string number; false (and a message) if it is not one or out of [lo, hi]. */
int ig_cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int ig_cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);

/* The default model: $IGNIS_MODEL, else $IGNIS_TEST_DATA/models/stories260K.gguf, else
 * ../shared/... */
const char *ig_cli_default_model(void);

#endif
