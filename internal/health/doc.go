// Package health decides which of a service's backends the gateway may
// route to. It runs active health checks (HTTP or TCP, with rise and fall
// thresholds) and passive outlier detection (ejecting a backend for a
// while after consecutive 5xx responses or connect failures), and it keeps
// a service routable in "panic mode" when too few of its backends are
// left.
//
// State is kept per service-backend pair: the gateway adds one Target per
// backend to the Group of each service, so two services that share an
// address judge it independently. All timing goes through a Clock, so
// tests drive the state machine with a FakeClock instead of sleeping.
package health
