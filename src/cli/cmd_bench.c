/* cmd_bench.c: `ignis bench` (placeholder until the benchmark lands). */
#include "cli/cli.h"

int ig_cli_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ig_cli_fail("bench: not implemented yet");
    return 1;
}
