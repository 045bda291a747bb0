// Command live runs keyward's alert rules and Grafana dashboard against a real stack: three
// gateway processes in two scrape jobs, the mock upstream and a real redis-server, scraped by
// Prometheus of the version docker-compose.yml pins. It drives scripted phases (healthy, error
// storm, upstream 401s, slow upstream, heavy spend, Redis memory, Redis down, auth failures, one
// replica down, a whole job down while another is up) and asserts which alerts fire in each, that
// none fire while healthy, that no rule evaluation fails, that the "spent today" recording rule
// matches the summed counters within 1%, and that every dashboard query returns data.
//
// The rules are the shipped file with only the `for:` durations shortened (see shortenFor);
// every expression, range and threshold is the one that is deployed.
//
// It is its own module (standard library only), outside go.work, like deploy/validate; run it
// through deploy/scripts/test-live.sh (make test-live), which builds what it needs:
//
//	GOWORK=off go run . -bin ../../bin -prometheus ~/.cache/keyward/prometheus-v3.2.1
//
// Every process it starts is stopped by PID when it ends, also on failure or interrupt.
package main
