// Package version holds herd's version, set at build time with
// -ldflags "-X github.com/herd-cluster/herd/internal/version.Version=...".
package version

// Version is herd's release version.
var Version = "0.1.0-dev"
