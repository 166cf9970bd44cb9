package procfs

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (a b) (c)) S 1 4242 4242 0 -1 4194560 98 0 0 0 7 5 3 2 20 0 1 0 123456 2170880 240 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	s, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s != (Stat{State: 'S', Pgrp: 4242, StartTime: 123456, CPUTicks: 17}) {
		t.Errorf("ParseStat = %+v", s)
	}
	if s.CPUTime() != 170*time.Millisecond {
		t.Errorf("CPUTime = %v, want 170ms", s.CPUTime())
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3",
		"1 (x) S 1 2 3 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 5 0 0"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q): no error", bad)
		}
	}
	if (Stat{State: 'Z'}).Dead() != true || (Stat{State: 'S'}).Dead() {
		t.Error("Dead is wrong for Z or S")
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	before, err := ReadStat(os.Getpid())
	if err != nil || before.StartTime == 0 || before.Pgrp == 0 {
		t.Fatalf("ReadStat(self) = %+v, %v", before, err)
	}
	end := time.Now().Add(150 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	after, _ := ReadStat(os.Getpid())
	if after.CPUTicks <= before.CPUTicks || after.StartTime != before.StartTime {
		t.Fatalf("over 150 ms of spinning: %+v -> %+v", before, after)
	}
	if _, err := ReadStat(1 << 30); err == nil {
		t.Fatal("a missing pid gave a figure")
	}
}
