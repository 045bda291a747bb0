package mock

import (
	"strconv"
	"sync/atomic"
)

// stats counts API requests. Everything is an atomic so the hot path takes no lock.
type stats struct {
	requests     atomic.Int64
	byRoute      [numRoutes]atomic.Int64
	byStatus     [600]atomic.Int64
	cancelled    atomic.Int64
	dropped      atomic.Int64
	streamErrors atomic.Int64
	faults       atomic.Int64
	streams      atomic.Int64
	openStreams  atomic.Int64
	inflight     atomic.Int64
}

func newStats() *stats { return &stats{} }

func (s *stats) record(c *call) {
	s.requests.Add(1)
	s.byRoute[c.route].Add(1)
	if c.status > 0 && c.status < len(s.byStatus) {
		s.byStatus[c.status].Add(1)
	}
	if c.stream && c.status == 200 {
		s.streams.Add(1)
	}
	if c.fault {
		s.faults.Add(1)
	}
	switch c.outcome {
	case outcomeCancelled:
		s.cancelled.Add(1)
	case outcomeDropped:
		s.dropped.Add(1)
	case outcomeStreamError:
		s.streamErrors.Add(1)
	}
}

// Stats is the JSON of GET /_mock/stats.
type Stats struct {
	Requests      int64            `json:"requests"`
	ByPath        map[string]int64 `json:"by_path"`
	ByStatus      map[string]int64 `json:"by_status"`
	Cancelled     int64            `json:"cancelled"`
	Dropped       int64            `json:"dropped"`
	StreamErrors  int64            `json:"stream_errors"`
	Faults        int64            `json:"faults_injected"`
	Streams       int64            `json:"streams"`
	OpenStreams   int64            `json:"open_streams"`
	InFlight      int64            `json:"in_flight"`
	FaultsPending int64            `json:"faults_pending"`
}

func (s *stats) snapshot() Stats {
	out := Stats{
		Requests:     s.requests.Load(),
		ByPath:       map[string]int64{},
		ByStatus:     map[string]int64{},
		Cancelled:    s.cancelled.Load(),
		Dropped:      s.dropped.Load(),
		StreamErrors: s.streamErrors.Load(),
		Faults:       s.faults.Load(),
		Streams:      s.streams.Load(),
		OpenStreams:  s.openStreams.Load(),
		InFlight:     s.inflight.Load(),
	}
	for i := range s.byRoute {
		if n := s.byRoute[i].Load(); n > 0 {
			out.ByPath[routeNames[i]] = n
		}
	}
	for i := range s.byStatus {
		if n := s.byStatus[i].Load(); n > 0 {
			out.ByStatus[strconv.Itoa(i)] = n
		}
	}
	return out
}

// reset zeroes the counters. Gauges of live work (open streams, in flight) are left alone:
// those requests are still running and will decrement them.
func (s *stats) reset() {
	s.requests.Store(0)
	for i := range s.byRoute {
		s.byRoute[i].Store(0)
	}
	for i := range s.byStatus {
		s.byStatus[i].Store(0)
	}
	s.cancelled.Store(0)
	s.dropped.Store(0)
	s.streamErrors.Store(0)
	s.faults.Store(0)
	s.streams.Store(0)
}
