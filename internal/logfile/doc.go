// Package logfile keeps a replica's log files to a bounded size and reads
// them back for `herd logs`.
//
// A replica writes its stdout and stderr straight into files it holds open
// with O_APPEND, and keeps them across agent restarts, so herd cannot swap
// the files under it. A Rotator therefore rotates by copy and truncate, as
// logrotate's copytruncate does: the full file is copied to "<name>.1"
// (older copies shift to .2, .3, ...) and the original is truncated to
// zero; the writer's next append lands at the new end of the file. Bytes
// appended between the copy's last read and the truncation (two system
// calls apart) are lost, which is the price of not owning the writer's
// descriptor.
//
// Tail and Follow read the rotated set: Tail the last lines across the
// copies and the live file, Follow what is appended to the live file from
// then on, across its truncations.
package logfile
