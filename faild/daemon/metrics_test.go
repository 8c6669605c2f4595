package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetrics scrapes the endpoint, answered by a stand-in for the loop,
// and parses what it serves with Prometheus's own text parser: every
// family with its type, the paths' state, degraded state and reason, loss
// (window and since start) and RTT (last, p50, p99) as the status has
// them, failovers and switchbacks, drops by reason, hooks, and the
// diagnosis as a labelled gauge.
func TestMetrics(t *testing.T) {
	ln, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requests := make(chan request)
	done := make(chan error, 1)
	go func() { done <- serveMetrics(ctx, ln, requests, slog.New(slog.DiscardHandler)) }()
	st := &Status{Peers: 1, PathsDown: 1, Drops: map[string]uint64{"ttl": 3, "auth": 0},
		Hooks: StatusHooks{Run: 2, Failed: 1},
		Paths: []StatusPath{
			{Peer: "192.0.2.2", LAN: "A", Addr: "192.0.2.2", State: "invalid", Reason: "loss", Failovers: 1,
				LossWindowPercent: 23, LossTotalPercent: 6.5, LossInPercent: 23, LossInSlots: 300, RTTSamples: 128, RTTP50Seconds: 0.000142, RTTP99Seconds: 0.000388},
			{Peer: "192.0.2.2", LAN: "B", Addr: "198.51.100.2", State: "valid", RTTSeconds: 0.000134, Failovers: 2, Switchbacks: 2,
				LossWindowPercent: 0, LossRoundTripSlots: 300, RTTSamples: 128, RTTP50Seconds: 0.000129, RTTP99Seconds: 0.000251},
			{Peer: "192.0.2.3", LAN: "A", Addr: "192.0.2.3", State: "invalid", Reason: "missed", Failovers: 1},
		},
		Diagnosis: []Diagnosis{{LAN: "A", Fault: FaultNodeLink, Node: "192.0.2.2", Detail: "no node hears 192.0.2.2 on LAN A and it hears none"}},
	}
	go func() {
		for r := range requests {
			if r.verb != "metrics" {
				t.Errorf("request %q", r.verb)
			}
			r.scrape <- &scrape{status: st}
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, body)
	}
	value := func(name string, typ dto.MetricType, labels map[string]string) (float64, bool) {
		f, ok := fams[name]
		if !ok || f.GetType() != typ {
			return 0, false
		}
	metric:
		for _, m := range f.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			switch typ {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			default:
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	G, C := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	a := map[string]string{"peer": "192.0.2.2", "lan": "A", "addr": "192.0.2.2"}
	b := map[string]string{"peer": "192.0.2.2", "lan": "B", "addr": "198.51.100.2"}
	c := map[string]string{"peer": "192.0.2.3", "lan": "A", "addr": "192.0.2.3"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"faild_path_up", G, a, 0},
		{"faild_path_up", G, b, 1},
		{"faild_path_degraded", G, a, 1},
		{"faild_path_degraded", G, b, 0},
		{"faild_path_degraded", G, c, 0},
		{"faild_path_invalid_reason", G, with(a, "reason", "loss"), 1},
		{"faild_path_invalid_reason", G, with(c, "reason", "missed"), 1},
		{"faild_path_rtt_seconds", G, b, 0.000134},
		{"faild_path_rtt_p50_seconds", G, a, 0.000142},
		{"faild_path_rtt_p99_seconds", G, a, 0.000388},
		{"faild_path_rtt_p50_seconds", G, b, 0.000129},
		{"faild_path_loss_ratio", G, a, 0.23},
		{"faild_path_loss_total_ratio", G, a, 0.065},
		{"faild_path_loss_ratio", G, b, 0},
		{"faild_failovers_total", C, a, 1},
		{"faild_failovers_total", C, b, 2},
		{"faild_switchbacks_total", C, b, 2},
		{"faild_paths_down", G, nil, 1},
		{"faild_peers", G, nil, 1},
		{"faild_drops_total", C, map[string]string{"reason": "ttl"}, 3},
		{"faild_drops_total", C, map[string]string{"reason": "auth"}, 0},
		{"faild_hooks_run_total", C, nil, 2},
		{"faild_hooks_failed_total", C, nil, 1},
		{"faild_diagnoses", G, nil, 1},
		{"faild_diagnosis", G, map[string]string{"lan": "A", "fault": "node-link", "node": "192.0.2.2"}, 1},
	} {
		if got, ok := value(c.name, c.typ, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v %v", c.name, c.labels, got, ok, c.typ, c.want)
		}
	}
	for _, name := range []string{"faild_path_loss_ratio", "faild_path_loss_total_ratio", "faild_path_rtt_p50_seconds", "faild_path_rtt_p99_seconds"} {
		if _, ok := value(name, G, c); ok {
			t.Errorf("%s for a path that has measured none", name)
		}
	}
	if _, ok := value("faild_path_invalid_reason", G, b); ok {
		t.Error("an invalid reason for a valid path")
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /: %v %v; want 404", resp.StatusCode, err)
	}
	if resp, err := http.Post("http://"+ln.Addr().String()+"/metrics", "text/plain", strings.NewReader("x")); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /metrics: %v %v; want 405", resp.StatusCode, err)
	}
	if resp, err := http.Head("http://" + ln.Addr().String() + "/metrics?x=1"); err != nil || resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Errorf("HEAD /metrics: %v %v; want 200 with a length", resp, err)
	}
	for _, raw := range []string{"GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("y", maxRequest) + "\r\n\r\n", "GET /metrics"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(raw))
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
			t.Errorf("request %.20q...: answered %.40q, want 400", raw, got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serveMetrics after its context ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("serveMetrics did not stop")
	}
}

// TestMetricsBindError: an address in use is an error that names the
// flag and the address.
func TestMetricsBindError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = listenMetrics(busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen "+busy.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("listen on a port in use: %v", err)
	}
}
