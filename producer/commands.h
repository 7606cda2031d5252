/*
 * commands.h - the subcommands of m3bridge-publisher, one file each.
 * Each takes argv with argv[0] == the command name and returns an exit
 * code (M3B_EXIT_*).
 */
#ifndef M3B_PUBLISHER_COMMANDS_H
#define M3B_PUBLISHER_COMMANDS_H

int m3b_cmd_keygen(int argc, char **argv);
int m3b_cmd_topics(int argc, char **argv);
int m3b_cmd_publish(int argc, char **argv);
int m3b_cmd_delete(int argc, char **argv);
int m3b_cmd_status(int argc, char **argv);

#endif
