package sysagent

import (
	"slices"
	"time"
)

// Sampler takes samples of the host with a set of collectors. It is not
// safe for concurrent use.
type Sampler struct {
	host  string
	paths Paths
	names []string
	cols  map[string]Collector
	// last is when each collector last read its counters (absent: never,
	// so its next sample has no rates).
	last map[string]time.Time
}

// NewSampler returns a sampler for host reading paths with the
// collectors called names (Names() for all).
func NewSampler(host string, paths Paths, names []string) *Sampler {
	s := &Sampler{host: host, paths: paths, cols: map[string]Collector{}, last: map[string]time.Time{}}
	s.SetCollectors(names)
	return s
}

// SetCollectors changes the collectors. Those kept keep their earlier
// readings: the next sample has their rates.
func (s *Sampler) SetCollectors(names []string) {
	s.names = slices.Clone(names)
	for name := range s.cols {
		if !slices.Contains(names, name) {
			delete(s.cols, name)
			delete(s.last, name)
		}
	}
}

// Sample reads every collector at now. A collector that fails leaves its
// part out and says why in Errors; the others stand.
func (s *Sampler) Sample(now time.Time) *Record {
	r := &Record{Schema: SchemaVersion, Host: s.host, Time: formatTime(now), Rates: true}
	var since time.Time
	for _, name := range s.names {
		c, ok := s.cols[name]
		if !ok {
			var err error
			// A collector that cannot be made is tried again next time.
			if c, err = NewCollector(name, s.paths); err != nil {
				s.fail(r, name, err)
				r.Rates = false
				continue
			}
			s.cols[name] = c
		}
		prev := s.last[name]
		if prev.IsZero() {
			r.Rates = false
		} else if since.IsZero() || prev.Before(since) {
			since = prev
		}
		if err := c.Update(r, now, prev); err != nil {
			s.fail(r, name, err)
		}
		s.last[name] = now
	}
	if r.Rates && !since.IsZero() {
		r.RateSeconds = round2(now.Sub(since).Seconds())
	}
	return r
}

func (s *Sampler) fail(r *Record, name string, err error) {
	if r.Errors == nil {
		r.Errors = map[string]string{}
	}
	r.Errors[name] = err.Error()
}
