package health

import (
	"strings"
	"testing"
	"time"
)

func TestCheckSpecDefaults(t *testing.T) {
	got := CheckSpec{}.WithDefaults()
	want := CheckSpec{Type: "http", Path: "/", ExpectStatus: [2]int{200, 399}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}
	if got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	tcp := CheckSpec{Type: "tcp", Rise: -1}.WithDefaults()
	if tcp.Path != "" || tcp.ExpectStatus != [2]int{} {
		t.Fatalf("tcp defaults set http fields: %+v", tcp)
	}
	if tcp.Rise != -1 {
		t.Fatalf("WithDefaults changed an explicit negative rise to %d", tcp.Rise)
	}
	if err := (CheckSpec{}).Validate(); err != nil {
		t.Fatalf("zero spec (all defaults) invalid: %v", err)
	}
}

func TestCheckSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec CheckSpec
		want []string // substrings of the error, each naming a field; none means valid
	}{
		{name: "valid http", spec: CheckSpec{Type: "http", Path: "/healthz?full=1", Host: "app.example", ExpectStatus: [2]int{200, 204}, BodyMatch: "ok", Interval: time.Second, Timeout: 500 * time.Millisecond, Jitter: 100 * time.Millisecond, Rise: 1, Fall: 1}},
		{name: "valid tcp", spec: CheckSpec{Type: "tcp", Interval: time.Second, Timeout: time.Second / 2}},
		{name: "timeout not below default interval", spec: CheckSpec{Timeout: 5 * time.Second}, want: []string{"health_check.timeout: must be less than interval (5s)"}},
		{name: "timeout above interval", spec: CheckSpec{Interval: time.Second, Timeout: 2 * time.Second}, want: []string{"health_check.timeout: must be less than interval (1s)"}},
		{name: "negative rise", spec: CheckSpec{Rise: -1}, want: []string{"health_check.rise: must be at least 1"}},
		{name: "negative fall", spec: CheckSpec{Fall: -2}, want: []string{"health_check.fall: must be at least 1"}},
		{name: "udp", spec: CheckSpec{Type: "udp"}, want: []string{`health_check.type: "udp" is not one of http, tcp`}},
		{name: "reversed status range", spec: CheckSpec{ExpectStatus: [2]int{399, 200}}, want: []string{"health_check.expect_status: [399, 200] is reversed"}},
		{name: "status out of range", spec: CheckSpec{ExpectStatus: [2]int{200, 600}}, want: []string{"health_check.expect_status: [200, 600] is not a range"}},
		{name: "relative path", spec: CheckSpec{Path: "healthz"}, want: []string{`health_check.path: "healthz" must start with /`}},
		{name: "path with space", spec: CheckSpec{Path: "/a b"}, want: []string{`health_check.path: "/a b" is not a valid request path`}},
		{name: "bad host", spec: CheckSpec{Host: "a b"}, want: []string{`health_check.host:`}},
		{name: "huge body match", spec: CheckSpec{BodyMatch: strings.Repeat("x", 64<<10+1)}, want: []string{"health_check.body_match:"}},
		{name: "negative interval", spec: CheckSpec{Interval: -time.Second}, want: []string{"health_check.interval: must be positive"}},
		{name: "negative timeout", spec: CheckSpec{Timeout: -time.Second}, want: []string{"health_check.timeout: must be positive"}},
		{name: "negative jitter", spec: CheckSpec{Jitter: -time.Second}, want: []string{"health_check.jitter: must not be negative"}},
		{name: "http fields on tcp", spec: CheckSpec{Type: "tcp", Path: "/", Host: "h", ExpectStatus: [2]int{200, 200}, BodyMatch: "ok"}, want: []string{"health_check.path: only for http checks", "health_check.host: only", "health_check.expect_status: only", "health_check.body_match: only"}},
		{name: "several", spec: CheckSpec{Type: "udp", Rise: -1, Fall: -1}, want: []string{"health_check.type:", "health_check.rise:", "health_check.fall:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tc.want) {
				t.Errorf("Validate() has %d errors, want %d: %q", got, len(tc.want), err)
			}
		})
	}
}

func TestOutlierSpecDefaults(t *testing.T) {
	got := OutlierSpec{}.WithDefaults()
	want := OutlierSpec{Consecutive5xx: 5, ConsecutiveConnectFailure: 3, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50}
	if got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	if got := (OutlierSpec{BaseEjectionTime: 10 * time.Minute}).WithDefaults().MaxEjectionTime; got != 10*time.Minute {
		t.Fatalf("default max_ejection_time with a 10m base = %s, want 10m", got)
	}
}

func TestOutlierSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec OutlierSpec
		want []string
	}{
		{name: "defaults", spec: OutlierSpec{}},
		{name: "disabled", spec: OutlierSpec{Disabled: true}},
		{name: "negative 5xx", spec: OutlierSpec{Consecutive5xx: -1}, want: []string{"outlier_detection.consecutive_5xx: must be at least 1"}},
		{name: "negative connect", spec: OutlierSpec{ConsecutiveConnectFailure: -1}, want: []string{"outlier_detection.consecutive_connect_failure: must be at least 1"}},
		{name: "negative base", spec: OutlierSpec{BaseEjectionTime: -time.Second}, want: []string{"outlier_detection.base_ejection_time: must be positive"}},
		{name: "max below base", spec: OutlierSpec{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second}, want: []string{"outlier_detection.max_ejection_time: must be at least base_ejection_time (1m0s)"}},
		{name: "negative max", spec: OutlierSpec{MaxEjectionTime: -time.Second}, want: []string{"outlier_detection.max_ejection_time: must be positive"}},
		{name: "percent over 100", spec: OutlierSpec{MaxEjectionPercent: 101}, want: []string{"outlier_detection.max_ejection_percent: 101 is not in 1-100"}},
		{name: "negative percent", spec: OutlierSpec{MaxEjectionPercent: -5}, want: []string{"outlier_detection.max_ejection_percent:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// A short interval without a timeout gets one that fits in it, so
// "interval: 1s" alone is a valid check.
func TestShortIntervalGetsFittingTimeout(t *testing.T) {
	s := CheckSpec{Interval: time.Second}.WithDefaults()
	if s.Timeout != 500*time.Millisecond {
		t.Fatalf("timeout %s, want 500ms", s.Timeout)
	}
	if err := (CheckSpec{Interval: time.Second}).Validate(); err != nil {
		t.Fatalf("interval 1s alone: %v", err)
	}
	if s := (CheckSpec{}).WithDefaults(); s.Timeout != DefaultCheckTimeout {
		t.Fatalf("default timeout %s", s.Timeout)
	}
}
