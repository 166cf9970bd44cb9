package controller

import (
	"context"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/state"
)

// storeLeader applies service writes straight to a real store, standing in
// for the Raft leader so that the autoscaler's decisions can be stepped
// with a chosen clock.
type storeLeader struct {
	store *state.Store
	idx   uint64
}

func (l *storeLeader) Store() *state.Store { return l.store }

func (l *storeLeader) ApplyLocal(_ context.Context, cmd *server.Command) (*server.Result, error) {
	l.idx++
	var err error
	switch cmd.Op {
	case server.OpServiceUpsert:
		err = l.store.ServiceUpsert(l.idx, cmd.Service)
	case server.OpReplicaPlan:
		err = l.store.ReplicaApplyPlan(l.idx, cmd.Plan)
	case server.OpServiceRollout:
		err = l.store.ServiceSetRollout(l.idx, cmd.ID, cmd.Version, cmd.State, cmd.Message)
	default:
		return &server.Result{Index: l.idx, Error: "unexpected op " + string(cmd.Op)}, nil
	}
	if err != nil {
		return nil, err
	}
	return &server.Result{Index: l.idx, OK: true}, nil
}

type fixedMetrics struct {
	rate float64
	cpu  map[string]float64
}

func (m *fixedMetrics) Gateways(context.Context) ([][]api.GatewayService, error) {
	half := api.BackendStatus{RatePerSecond: m.rate / 2}
	return [][]api.GatewayService{{{Name: "web", Backends: []api.BackendStatus{half}}}, {{Name: "web", Backends: []api.BackendStatus{half}}}}, nil
}

func (m *fixedMetrics) ReplicaCPU(context.Context) (map[string]float64, error) { return m.cpu, nil }

func TestRecommend(t *testing.T) {
	for _, c := range []struct {
		load, per float64
		lo, hi    int
		want      int
	}{
		{0, 10, 1, 5, 1}, {10, 10, 1, 5, 1}, {10.5, 10, 1, 5, 2}, {100, 10, 1, 5, 5}, {30, 10, 0, 5, 3}, {0, 10, 0, 5, 0}, {5, 0, 2, 5, 2},
	} {
		if got := Recommend(c.load, c.per, c.lo, c.hi); got != c.want {
			t.Errorf("Recommend(%v, %v, %d, %d) = %d, want %d", c.load, c.per, c.lo, c.hi, got, c.want)
		}
	}
}

func replicasNow(t *testing.T, st *state.Store) int {
	t.Helper()
	_, e, err := st.ServiceGet(nil, "web")
	if err != nil || e == nil {
		t.Fatalf("service: %v", err)
	}
	return *e.Run.Replicas
}

func TestAutoscalerScalesUpAtOnceAndDownAfterTheWindow(t *testing.T) {
	l := &storeLeader{store: state.New(), idx: 10}
	one := 1
	svc := &api.Service{Name: "web", Routes: []api.Route{{PathPrefix: "/"}}, Run: &api.Run{Driver: "exec", Command: "/bin/web", Replicas: &one,
		Autoscale: &api.Autoscale{Min: 1, Max: 4, TargetRPSPerReplica: 10, Window: api.Duration(time.Minute)}}}
	if err := l.store.ServiceUpsert(l.idx, svc); err != nil {
		t.Fatal(err)
	}
	m := &fixedMetrics{rate: 35}
	a := NewAutoscaler(AutoscaleConfig{}, l, m)
	ctx := context.Background()
	t0 := time.Now()
	if err := a.Step(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if got := replicasNow(t, l.store); got != 4 {
		t.Fatalf("35 req/s at 10 per replica: %d replicas, want 4", got)
	}
	_, e, _ := l.store.ServiceGet(nil, "web")
	if e.RunVersion != 10 {
		t.Fatalf("scaling made a new version %d: it must not roll the replicas", e.RunVersion)
	}
	// The load drops: within the window the count holds.
	m.rate = 5
	for _, d := range []time.Duration{10 * time.Second, 59 * time.Second} {
		if err := a.Step(ctx, t0.Add(d)); err != nil {
			t.Fatal(err)
		}
		if got := replicasNow(t, l.store); got != 4 {
			t.Fatalf("at +%s: %d replicas; the window should hold 4", d, got)
		}
	}
	// Once the high recommendation has left the window it scales down.
	if err := a.Step(ctx, t0.Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := replicasNow(t, l.store); got != 1 {
		t.Fatalf("after the window: %d replicas, want 1", got)
	}
}

func TestAutoscalerCPUTarget(t *testing.T) {
	l := &storeLeader{store: state.New(), idx: 10}
	two := 2
	svc := &api.Service{Name: "web", Routes: []api.Route{{PathPrefix: "/"}}, Run: &api.Run{Driver: "exec", Command: "/bin/web", Replicas: &two,
		Resources: &api.Resources{CPU: 500}, Autoscale: &api.Autoscale{Min: 1, Max: 10, TargetCPU: 50}}}
	if err := l.store.ServiceUpsert(l.idx, svc); err != nil {
		t.Fatal(err)
	}
	if err := l.store.ReplicaApplyPlan(11, &state.ReplicaPlan{Upsert: []*api.Replica{
		{ID: "web-1", Service: "web", Node: "n", Desired: api.DesiredRun},
		{ID: "web-2", Service: "web", Node: "n", Desired: api.DesiredRun},
		{ID: "web-3", Service: "web", Node: "n", Desired: api.DesiredStop}, // being stopped: not counted
	}}); err != nil {
		t.Fatal(err)
	}
	// 2 × 400 millicores against 250 per replica (50% of 500): 4 replicas.
	m := &fixedMetrics{cpu: map[string]float64{"web-1": 400, "web-2": 400, "web-3": 900}}
	if err := NewAutoscaler(AutoscaleConfig{}, l, m).Step(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := replicasNow(t, l.store); got != 4 {
		t.Fatalf("%d replicas, want 4", got)
	}
}
