// Package spec parses and validates the objects users apply to herd: the
// YAML files of `herd apply -f FILE` (several documents separated by
// "---", each with a kind; today the only kind is service) and the JSON
// bodies of the service API. It also says what a service looks like with
// every default filled in (Defaults), converts health check settings for
// the gateway (CheckSpec, OutlierSpec) and detects routes that two
// services both claim (RoutesConflict).
//
// Decoding is strict everywhere: an unknown or misspelt field, a value of
// the wrong type or a repeated key is an error naming the field, so that a
// typo never silently drops a setting. Validation reports every problem at
// once, each naming its field by the path users write, such as
// "backends[2].address".
package spec
