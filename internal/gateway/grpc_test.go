package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/herd-cluster/herd/api"
)

// Real gRPC through the gateway: a grpc-go client speaking h2c to the
// gateway, which forwards to a grpc-go server (backend_protocol: h2c).
// Unary calls, gRPC status codes carried in trailers, and a server stream
// all pass.
func TestGRPCThroughGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	defer srv.Stop()

	g := startGateway(t, newMemSource(api.Service{Name: "grpc", BackendProtocol: "h2c",
		Routes:   []api.Route{{PathPrefix: "/grpc.health.v1.Health/"}},
		Backends: []api.Backend{{Address: ln.Addr().String()}}}))
	conn, err := grpc.NewClient(g.HTTPAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "web"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check(web) through the gateway: %v, %v", resp, err)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(nope): %v, want the backend's NotFound status from the trailers", err)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first streamed status: %v, %v", first, err)
	}
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_NOT_SERVING)
	second, err := stream.Recv()
	if err != nil || second.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("second streamed status: %v, %v", second, err)
	}
}
