package health

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Check types.
const (
	CheckHTTP = "http"
	CheckTCP  = "tcp"
)

// maxBody is how much of a check response's body is searched for
// BodyMatch.
const maxBody = 64 << 10

// CheckSpec configures an active health check. Zero fields take the
// defaults that WithDefaults fills in; negative numbers are kept so that
// Validate can report them.
type CheckSpec struct {
	// Type is "http" or "tcp". Default "http".
	Type string
	// Path is the request path of an http check. Default "/". Not allowed
	// for tcp checks.
	Path string
	// Host is the Host header of an http check. Empty means the backend's
	// address.
	Host string
	// ExpectStatus is the inclusive range of status codes that pass an
	// http check. Default {200, 399}.
	ExpectStatus [2]int
	// BodyMatch, if set, must occur in the first 64 KiB of the response
	// body of an http check.
	BodyMatch string
	// Interval is the wait between the end of one check and the start of
	// the next. Default 5s.
	Interval time.Duration
	// Timeout bounds one check (connect, request and response). Default
	// 2s, or half the Interval when that is 2s or less; must be less than
	// Interval.
	Timeout time.Duration
	// Jitter adds a random delay in [0, Jitter) to every Interval, so
	// that a gateway's checks spread out. Default 0.
	Jitter time.Duration
	// Rise is how many consecutive passing checks make an unhealthy
	// target healthy. Default 2.
	Rise int
	// Fall is how many consecutive failing checks make a healthy target
	// unhealthy. Default 3.
	Fall int
}

// Default check settings.
const (
	DefaultCheckInterval = 5 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultRise          = 2
	DefaultFall          = 3
	DefaultCheckPath     = "/"
)

// DefaultExpectStatus is the status range an http check accepts by default.
var DefaultExpectStatus = [2]int{200, 399}

// WithDefaults returns s with its zero fields set to their defaults. The
// http-only fields are left alone for tcp checks.
func (s CheckSpec) WithDefaults() CheckSpec {
	if s.Type == "" {
		s.Type = CheckHTTP
	}
	if s.Type == CheckHTTP {
		if s.Path == "" {
			s.Path = DefaultCheckPath
		}
		if s.ExpectStatus == [2]int{} {
			s.ExpectStatus = DefaultExpectStatus
		}
	}
	if s.Interval == 0 {
		s.Interval = DefaultCheckInterval
	}
	if s.Timeout == 0 {
		// A short interval gets a timeout that fits in it.
		s.Timeout = DefaultCheckTimeout
		if s.Interval > 0 && s.Interval <= s.Timeout {
			s.Timeout = s.Interval / 2
		}
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	return s
}

// checkPrefix and outlierPrefix are the YAML keys validation errors are
// reported under.
const (
	checkPrefix   = "health_check."
	outlierPrefix = "outlier_detection."
)

func fieldErr(prefix, field, format string, args ...any) error {
	return fmt.Errorf("%s%s: %s", prefix, field, fmt.Sprintf(format, args...))
}

// Validate checks s with its defaults applied (so zero fields are fine) and
// returns every problem, each naming its field, as in
// "health_check.timeout: must be less than interval (5s)".
func (s CheckSpec) Validate() error {
	s = s.WithDefaults()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(checkPrefix, field, format, args...))
	}
	switch s.Type {
	case CheckHTTP:
		if !strings.HasPrefix(s.Path, "/") {
			add("path", "%q must start with /", s.Path)
		} else if _, err := url.ParseRequestURI(s.Path); err != nil || strings.ContainsAny(s.Path, " \t\r\n") {
			add("path", "%q is not a valid request path", s.Path)
		}
		if strings.ContainsAny(s.Host, " \t\r\n/") {
			add("host", "%q is not a valid host", s.Host)
		}
		lo, hi := s.ExpectStatus[0], s.ExpectStatus[1]
		switch {
		case lo < 100 || lo > 599 || hi < 100 || hi > 599:
			add("expect_status", "[%d, %d] is not a range of HTTP status codes (100-599)", lo, hi)
		case lo > hi:
			add("expect_status", "[%d, %d] is reversed: the first code must not exceed the second", lo, hi)
		}
		if len(s.BodyMatch) > maxBody {
			add("body_match", "longer than the %d bytes of body that are read", maxBody)
		}
	case CheckTCP:
		if s.Path != "" {
			add("path", "only for http checks")
		}
		if s.Host != "" {
			add("host", "only for http checks")
		}
		if s.ExpectStatus != [2]int{} {
			add("expect_status", "only for http checks")
		}
		if s.BodyMatch != "" {
			add("body_match", "only for http checks")
		}
	default:
		add("type", "%q is not one of http, tcp", s.Type)
	}
	if s.Interval <= 0 {
		add("interval", "must be positive")
	}
	switch {
	case s.Timeout <= 0:
		add("timeout", "must be positive")
	case s.Interval > 0 && s.Timeout >= s.Interval:
		add("timeout", "must be less than interval (%s)", s.Interval)
	}
	if s.Jitter < 0 {
		add("jitter", "must not be negative")
	}
	if s.Rise < 1 {
		add("rise", "must be at least 1")
	}
	if s.Fall < 1 {
		add("fall", "must be at least 1")
	}
	return joinSorted(errs)
}

func joinSorted(errs []error) error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// OutlierSpec configures passive outlier detection: the proxy reports the
// outcome of every request, and a backend that fails too often in a row
// is ejected (not routed to) for a while. Zero fields take the defaults
// that WithDefaults fills in.
type OutlierSpec struct {
	// Consecutive5xx is how many 5xx responses in a row eject a backend.
	// Default 5.
	Consecutive5xx int
	// ConsecutiveConnectFailure is how many connect failures (refused,
	// timed out, or reset before a response) in a row eject a backend.
	// Default 3.
	ConsecutiveConnectFailure int
	// BaseEjectionTime is the length of a first ejection. A backend's
	// n-th ejection lasts n times as long, up to MaxEjectionTime; the
	// multiplier drops by one for every MaxEjectionTime the backend then
	// spends without being ejected. Default 30s.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps one ejection. Default 300s, or BaseEjectionTime
	// if that is longer; must be at least BaseEjectionTime.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent caps how many of a service's backends are
	// ejected at once: a backend is ejected only if, counting it, at most
	// this percent of the service's backends (rounded down, but at least
	// one) are ejected. Default 50, range 1-100.
	MaxEjectionPercent int
	// Disabled turns passive outlier detection off; the other fields are
	// still validated.
	Disabled bool
}

// Default outlier detection settings.
const (
	DefaultConsecutive5xx            = 5
	DefaultConsecutiveConnectFailure = 3
	DefaultBaseEjectionTime          = 30 * time.Second
	DefaultMaxEjectionTime           = 300 * time.Second
	DefaultMaxEjectionPercent        = 50
)

// WithDefaults returns s with its zero fields set to their defaults.
func (s OutlierSpec) WithDefaults() OutlierSpec {
	if s.Consecutive5xx == 0 {
		s.Consecutive5xx = DefaultConsecutive5xx
	}
	if s.ConsecutiveConnectFailure == 0 {
		s.ConsecutiveConnectFailure = DefaultConsecutiveConnectFailure
	}
	if s.BaseEjectionTime == 0 {
		s.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if s.MaxEjectionTime == 0 {
		s.MaxEjectionTime = max(DefaultMaxEjectionTime, s.BaseEjectionTime)
	}
	if s.MaxEjectionPercent == 0 {
		s.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return s
}

// Validate checks s with its defaults applied and returns every problem,
// each naming its field, as in
// "outlier_detection.consecutive_5xx: must be at least 1".
func (s OutlierSpec) Validate() error {
	s = s.WithDefaults()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(outlierPrefix, field, format, args...))
	}
	if s.Consecutive5xx < 1 {
		add("consecutive_5xx", "must be at least 1")
	}
	if s.ConsecutiveConnectFailure < 1 {
		add("consecutive_connect_failure", "must be at least 1")
	}
	if s.BaseEjectionTime <= 0 {
		add("base_ejection_time", "must be positive")
	}
	if s.MaxEjectionTime <= 0 {
		add("max_ejection_time", "must be positive")
	} else if s.MaxEjectionTime < s.BaseEjectionTime {
		add("max_ejection_time", "must be at least base_ejection_time (%s)", s.BaseEjectionTime)
	}
	if s.MaxEjectionPercent < 1 || s.MaxEjectionPercent > 100 {
		add("max_ejection_percent", "%d is not in 1-100", s.MaxEjectionPercent)
	}
	return joinSorted(errs)
}
