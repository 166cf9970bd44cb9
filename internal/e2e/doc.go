// Package e2e runs herd as a multi-host cluster in Docker containers on a
// private bridge network (3 servers, 2 clients, each with its own address)
// and drives faults against it while clients record what they saw. It is
// built only with the e2e tag: make e2e builds the image and runs it, and
// .ci/run calls make e2e when a Docker engine answers.
package e2e
