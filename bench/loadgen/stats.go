package main

import (
	"math/bits"
	"sync/atomic"
	"syscall"
	"time"
)

// Hist is a lock-free log-linear latency histogram in microseconds: exact below 128 us,
// then 64 sub-buckets per power of two (error under 1.6 %).
type Hist struct {
	counts [128 + 64*48]atomic.Int64
	max    atomic.Int64
}

func bucketOf(us int64) int {
	if us < 0 {
		us = 0
	}
	if us < 128 {
		return int(us)
	}
	shift := bits.Len64(uint64(us)) - 7
	idx := 128 + (shift-1)*64 + int(us>>uint(shift)) - 64
	if idx >= len(Hist{}.counts) {
		idx = len(Hist{}.counts) - 1
	}
	return idx
}

func valueOf(idx int) float64 {
	if idx < 128 {
		return float64(idx)
	}
	shift := (idx-128)/64 + 1
	m := int64((idx-128)%64 + 64)
	lo := m << uint(shift)
	return float64(lo) + float64(int64(1)<<uint(shift))/2
}

func (h *Hist) Record(d time.Duration) {
	us := d.Microseconds()
	h.counts[bucketOf(us)].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

func (h *Hist) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.max.Store(0)
}

// Summary: count and p50/p90/p99/p99.9/max in microseconds.
func (h *Hist) Summary() map[string]float64 {
	var total int64
	snap := make([]int64, len(h.counts))
	for i := range h.counts {
		snap[i] = h.counts[i].Load()
		total += snap[i]
	}
	out := map[string]float64{"count": float64(total), "max_us": float64(h.max.Load())}
	qs := []struct {
		name string
		q    float64
	}{{"p50_us", 0.50}, {"p90_us", 0.90}, {"p99_us", 0.99}, {"p999_us", 0.999}}
	for _, q := range qs {
		if total == 0 {
			out[q.name] = 0
			continue
		}
		want := int64(q.q*float64(total-1)) + 1
		var acc int64
		for i, c := range snap {
			acc += c
			if acc >= want {
				out[q.name] = valueOf(i)
				break
			}
		}
	}
	return out
}

// cpuSeconds: user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// hex helpers for the fixed-layout ASCII payloads.

const hexdigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexdigits[v&15]
		v >>= 4
	}
}

func getHex(src []byte) (uint64, bool) {
	var v uint64
	for _, c := range src {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
