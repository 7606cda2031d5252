/*
 * commands.h - the subcommands of m3bridge-listener, one file each.
 */
#ifndef M3B_LISTENER_COMMANDS_H
#define M3B_LISTENER_COMMANDS_H

/* `m3bridge-listener run`: consume the desired topic and apply it. */
int cmd_run(int argc, char **argv);

/* `m3bridge-listener lag`: a group's lag and verdicts, from either plane. */
int cmd_lag(int argc, char **argv);

/* `m3bridge-listener replay`: rebuild the cluster from the desired topic. */
int cmd_replay(int argc, char **argv);

#endif
