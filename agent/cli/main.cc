#include "agent/cli/cli.h"

#ifndef SANDCI_VERSION
#define SANDCI_VERSION "dev"
#endif

int main(int argc, char** argv) { return sandci::agent::run_cli(argc, argv, SANDCI_VERSION); }
