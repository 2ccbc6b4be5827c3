// loadgen: a load generator for sac-sock and Socket.IO v5 websocket servers.
//
//	loadgen MODE [flags]      MODE: fanout | echo | idle | rooms
//
// It connects (and joins rooms), prints "READY {json}", then reads commands on stdin,
// one per line, and answers each with one "RESULT {json}" line:
//
//	run RATE COUNT CAP WINDOW   fanout/rooms: COUNT publishes (RATE per second, 0 = as
//	                            fast as the server drains with at most WINDOW publishes
//	                            outstanding), at most CAP seconds of publishing
//	run SECONDS COUNT           echo: every client does round trips for SECONDS (or COUNT)
//	quit                        close every socket (TCP reset) and exit; so does EOF
//
// The server must implement: "join" (payload: room name) -> joins the room and emits
// "joined" back; "pub" (payload "room|data") -> roomcasts event "m" with data to room;
// "echo" (payload) -> emits "echo" with the payload back. Every payload carries
// phase, publisher, sequence number and send time (ns since this process started).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var start = time.Now()

func nowNs() int64 { return int64(time.Since(start)) }

type common struct {
	urls     []string
	proto    string
	size     int
	dialConc int
	joinWait time.Duration
	settle   time.Duration
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen fanout|echo|idle|rooms [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	urls := fs.String("url", "ws://127.0.0.1:8080/socket", "server URL(s), comma-separated; sockets are spread round-robin")
	proto := fs.String("proto", protoSacsock, "sacsock | socketio | gopeer")
	size := fs.Int("size", 64, "bytes of each published payload (>= 40)")
	dialConc := fs.Int("dial-concurrency", 64, "connections being opened at once")
	joinWait := fs.Duration("join-timeout", 180*time.Second, "how long to wait for every join to be acknowledged")
	settle := fs.Duration("settle", time.Second, "pause after joins (lets a cluster learn its rooms)")
	subs := fs.Int("subs", 1000, "fanout: subscribers in the room")
	room := fs.String("room", "bench", "fanout: room name")
	clients := fs.Int("clients", 50, "echo: concurrent clients")
	blockers := fs.Int("blockers", 0, "echo: extra clients calling the app's \"block\" handler back to back")
	conns := fs.Int("conns", 10000, "idle: sockets to open")
	sockets := fs.Int("sockets", 4000, "rooms: sockets")
	rooms := fs.Int("rooms", 10000, "rooms: rooms")
	minM := fs.Int("min-members", 2, "rooms: fewest members of a room")
	maxM := fs.Int("max-members", 5, "rooms: most members of a room")
	casters := fs.Int("casters", 100, "rooms: sockets that publish (the first ones)")
	seed := fs.Int64("seed", 1, "rooms: random seed")
	fs.Parse(os.Args[2:])
	if *size < 40 {
		*size = 40
	}
	c := &common{strings.Split(*urls, ","), *proto, *size, *dialConc, *joinWait, *settle}
	if c.proto != protoSacsock && c.proto != protoSocketIO && c.proto != protoGoPeer {
		fatal("unknown -proto %q", c.proto)
	}
	var m interface {
		setup() map[string]any
		run(args []string) map[string]any
		close()
	}
	switch mode {
	case "fanout":
		m = &fanout{common: c, nsubs: *subs, room: *room}
	case "echo":
		m = &echo{common: c, n: *clients, blockers: *blockers}
	case "idle":
		m = &idle{common: c, n: *conns}
	case "rooms":
		m = &roomsBench{common: c, nsock: *sockets, nrooms: *rooms, minM: *minM, maxM: *maxM,
			ncast: *casters, seed: *seed}
	default:
		fatal("unknown mode %q", mode)
	}
	t0 := time.Now()
	info := m.setup()
	info["setup_s"] = time.Since(t0).Seconds()
	emit("READY", info)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			break
		}
		if f[0] == "run" {
			emit("RESULT", m.run(f[1:]))
		}
	}
	m.close()
	fmt.Println("BYE")
}

func emit(tag string, v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Printf("%s %s\n", tag, b)
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+f+"\n", a...)
	os.Exit(1)
}

func argF(args []string, i int, def float64) float64 {
	if i < len(args) {
		if v, err := strconv.ParseFloat(args[i], 64); err == nil {
			return v
		}
	}
	return def
}

// dialAll opens n connections (spread over the URLs) with bounded concurrency.
func (c *common) dialAll(n int) ([]*Conn, int, string) {
	out := make([]*Conn, n)
	var fails atomic.Int64
	var firstErr atomic.Value
	idx := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < c.dialConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				for attempt := 0; attempt < 3; attempt++ {
					conn, err := Dial(c.urls[i%len(c.urls)], c.proto)
					if err == nil {
						out[i] = conn
						break
					}
					if attempt == 2 {
						fails.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		idx <- i
	}
	close(idx)
	wg.Wait()
	ok := out[:0]
	for _, conn := range out {
		if conn != nil {
			ok = append(ok, conn)
		}
	}
	e, _ := firstErr.Load().(string)
	return ok, int(fails.Load()), e
}

func abortAll(conns []*Conn) {
	for _, c := range conns {
		if c != nil {
			c.Abort()
		}
	}
}

// payload layout (ASCII): kind(1) phase(7) publisher(4) seq(8) ts(16) then 'x' padding.
func fillPayload(b []byte, kind byte, phase, pub, seq uint64, ts int64) {
	b[0] = kind
	putHex(b[1:8], phase)
	putHex(b[8:12], pub)
	putHex(b[12:20], seq)
	putHex(b[20:36], uint64(ts))
}

func readPayload(p []byte) (phase, pub, seq uint64, ts int64, ok bool) {
	if len(p) < 36 {
		return 0, 0, 0, 0, false
	}
	var a, b, c, d bool
	phase, a = getHex(p[1:8])
	pub, b = getHex(p[8:12])
	seq, c = getHex(p[12:20])
	var t uint64
	t, d = getHex(p[20:36])
	return phase, pub, seq, int64(t), a && b && c && d
}

func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	return b
}

// pace waits until publish i may go: at the fixed rate, or while too much is outstanding.
// Returns the timestamp to carry (the scheduled time at a fixed rate, so a stall of the
// publisher still counts as latency).
func pace(i int, rate float64, t0 int64, outstanding func() bool, deadline int64) (int64, bool) {
	if rate > 0 {
		at := t0 + int64(float64(i)*1e9/rate)
		for {
			now := nowNs()
			if now >= deadline {
				return 0, false
			}
			if now >= at {
				return at, true
			}
			d := time.Duration(at - now)
			if d > 200*time.Microsecond {
				time.Sleep(d - 100*time.Microsecond)
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	for outstanding() {
		if nowNs() >= deadline {
			return 0, false
		}
		time.Sleep(30 * time.Microsecond)
	}
	now := nowNs()
	return now, now < deadline
}

// drain waits until want() is met or nothing arrives for idle.
func drain(done func() bool, progress func() int64, idle time.Duration) {
	last := progress()
	lastChange := time.Now()
	for !done() {
		time.Sleep(2 * time.Millisecond)
		p := progress()
		if p != last {
			last, lastChange = p, time.Now()
		} else if time.Since(lastChange) > idle {
			return
		}
	}
}

// ---- fanout --------------------------------------------------------------------------

type sub struct {
	c     *Conn
	phase uint64
	seen  []uint64
	last  int64
}

type fanout struct {
	*common
	nsubs int
	room  string
	subs  []*sub
	pub   *Conn

	joined                      atomic.Int64
	phase, phaseMsgs            atomic.Uint64
	delivered, dup, ooo, stale  atomic.Int64
	bad, readErrs, lastDelivery atomic.Int64
	hist                        Hist
}

func (f *fanout) setup() map[string]any {
	conns, fails, ferr := f.dialAll(f.nsubs)
	for _, c := range conns {
		s := &sub{c: c, last: -1}
		f.subs = append(f.subs, s)
		go f.reader(s)
	}
	pubs, _, perr := (&common{urls: f.urls[:1], proto: f.proto, dialConc: 1}).dialAll(1)
	if len(pubs) == 0 {
		fatal("publisher could not connect: %s", perr)
	}
	f.pub = pubs[0]
	go func() {
		for {
			if _, _, err := f.pub.Read(); err != nil {
				return
			}
		}
	}()
	for _, s := range f.subs {
		s.c.Emit("join", []byte(f.room))
	}
	deadline := time.Now().Add(f.joinWait)
	for f.joined.Load() < int64(len(f.subs)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(f.settle)
	return map[string]any{"subscribers": len(f.subs), "connect_failures": fails, "connect_error": ferr,
		"joined": f.joined.Load()}
}

func (f *fanout) reader(s *sub) {
	for {
		ev, p, err := s.c.Read()
		if err != nil {
			f.readErrs.Add(1)
			return
		}
		switch ev {
		case "joined":
			f.joined.Add(1)
		case "m":
			f.onMsg(s, p)
		}
	}
}

func (f *fanout) onMsg(s *sub, p []byte) {
	now := nowNs()
	phase, _, seq, ts, ok := readPayload(p)
	if !ok {
		f.bad.Add(1)
		return
	}
	if phase != f.phase.Load() {
		f.stale.Add(1)
		return
	}
	if s.phase != phase {
		n := int((f.phaseMsgs.Load() + 63) / 64)
		if cap(s.seen) >= n {
			s.seen = s.seen[:n]
			clear(s.seen)
		} else {
			s.seen = make([]uint64, n)
		}
		s.phase, s.last = phase, -1
	}
	if int(seq/64) >= len(s.seen) {
		f.bad.Add(1)
		return
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if s.seen[w]&bit != 0 {
		f.dup.Add(1)
		return
	}
	s.seen[w] |= bit
	if int64(seq) < s.last {
		f.ooo.Add(1)
	} else {
		s.last = int64(seq)
	}
	f.hist.Record(time.Duration(now - ts))
	f.lastDelivery.Store(now)
	f.delivered.Add(1)
}

func (f *fanout) run(args []string) map[string]any {
	rate := argF(args, 0, 0)
	msgs := int(argF(args, 1, 1000))
	capS := argF(args, 2, 30)
	window := int64(argF(args, 3, 16))
	k := int64(len(f.subs))
	f.phaseMsgs.Store(uint64(msgs))
	phase := f.phase.Add(1)
	for _, a := range []*atomic.Int64{&f.delivered, &f.dup, &f.ooo, &f.stale, &f.bad} {
		a.Store(0)
	}
	f.hist.Reset()
	body := newPayload(f.size)
	buf := append([]byte(f.room+"|"), body...)
	p := buf[len(f.room)+1:]
	cpu0 := cpuSeconds()
	t0 := nowNs()
	deadline := t0 + int64(capS*1e9)
	sent := int64(0)
	outstanding := func() bool { return sent-f.delivered.Load()/k >= window }
	var sendErr error
	for i := 0; i < msgs; i++ {
		ts, ok := pace(i, rate, t0, outstanding, deadline)
		if !ok {
			break
		}
		fillPayload(p, 'P', phase, 0, uint64(i), ts)
		if sendErr = f.pub.Emit("pub", buf); sendErr != nil {
			break
		}
		sent++
	}
	pubEnd := nowNs()
	drain(func() bool { return f.delivered.Load() >= sent*k }, f.delivered.Load, 5*time.Second)
	end := f.lastDelivery.Load()
	if end < t0 {
		end = nowNs()
	}
	elapsed := float64(end-t0) / 1e9
	delivered := f.delivered.Load()
	res := map[string]any{
		"subscribers": k, "rate": rate, "window": window, "sent": sent, "expected": sent * k,
		"delivered": delivered, "missing": sent*k - delivered, "duplicates": f.dup.Load(),
		"out_of_order": f.ooo.Load(), "stale": f.stale.Load(), "bad": f.bad.Load(),
		"elapsed_s": elapsed, "publish_s": float64(pubEnd-t0) / 1e9,
		"deliveries_per_s": float64(delivered) / elapsed, "msgs_per_s": float64(sent) / elapsed,
		"client_cpu_s": cpuSeconds() - cpu0, "read_errors": f.readErrs.Load(),
	}
	if sendErr != nil {
		res["send_error"] = sendErr.Error()
	}
	for key, v := range f.hist.Summary() {
		res[key] = v
	}
	return res
}

func (f *fanout) close() {
	for _, s := range f.subs {
		s.c.Abort()
	}
	f.pub.Abort()
}

// ---- echo ----------------------------------------------------------------------------

type echo struct {
	*common
	n        int
	blockers int // extra clients that keep calling the app's "block" handler (sleeps 0.2 s)
	conns    []*Conn
	bconns   []*Conn
}

func (e *echo) setup() map[string]any {
	conns, fails, ferr := e.dialAll(e.n + e.blockers)
	if len(conns) > e.n {
		e.conns, e.bconns = conns[:e.n], conns[e.n:]
	} else {
		e.conns = conns
	}
	return map[string]any{"clients": len(e.conns), "blockers": len(e.bconns), "connect_failures": fails,
		"connect_error": ferr}
}

// block keeps one blocker client calling "block" until the deadline; returns the calls made.
func (e *echo) block(c *Conn, deadline int64) int64 {
	var calls int64
	for nowNs() < deadline {
		if err := c.Emit("block", []byte("x")); err != nil {
			return calls
		}
		for {
			ev, _, err := c.Read()
			if err != nil {
				return calls
			}
			if ev == "blocked" {
				break
			}
		}
		calls++
	}
	return calls
}

func (e *echo) run(args []string) map[string]any {
	secs := argF(args, 0, 5)
	maxRT := int64(argF(args, 1, 1e9))
	var hist Hist
	var total, errs, bad atomic.Int64
	cpu0 := cpuSeconds()
	t0 := nowNs()
	deadline := t0 + int64(secs*1e9)
	var wg sync.WaitGroup
	var blocked atomic.Int64
	for _, c := range e.bconns {
		wg.Add(1)
		go func(c *Conn) {
			defer wg.Done()
			blocked.Add(e.block(c, deadline))
		}(c)
	}
	for ci, c := range e.conns {
		wg.Add(1)
		go func(ci int, c *Conn) {
			defer wg.Done()
			p := newPayload(e.size)
			for seq := uint64(0); nowNs() < deadline && total.Load() < maxRT; seq++ {
				sent := nowNs()
				fillPayload(p, 'E', 0, uint64(ci), seq, sent)
				if err := c.Emit("echo", p); err != nil {
					errs.Add(1)
					return
				}
				for {
					ev, got, err := c.Read()
					if err != nil {
						errs.Add(1)
						return
					}
					if ev != "echo" {
						continue
					}
					if _, _, s, _, ok := readPayload(got); !ok || s != seq {
						bad.Add(1)
					}
					break
				}
				hist.Record(time.Duration(nowNs() - sent))
				total.Add(1)
			}
		}(ci, c)
	}
	wg.Wait()
	elapsed := float64(nowNs()-t0) / 1e9
	res := map[string]any{
		"clients": len(e.conns), "round_trips": total.Load(), "elapsed_s": elapsed,
		"round_trips_per_s": float64(total.Load()) / elapsed, "errors": errs.Load(), "bad": bad.Load(),
		"client_cpu_s": cpuSeconds() - cpu0, "blocker_calls": blocked.Load(),
	}
	for key, v := range hist.Summary() {
		res[key] = v
	}
	return res
}

func (e *echo) close() { abortAll(e.conns); abortAll(e.bconns) }

// ---- idle ----------------------------------------------------------------------------

type idle struct {
	*common
	n      int
	conns  []*Conn
	closed atomic.Int64
}

func (d *idle) setup() map[string]any {
	conns, fails, ferr := d.dialAll(d.n)
	d.conns = conns
	for _, c := range conns {
		go func(c *Conn) { // answers Socket.IO pings; notices a server-side close
			for {
				if _, _, err := c.Read(); err != nil {
					d.closed.Add(1)
					return
				}
			}
		}(c)
	}
	return map[string]any{"conns": len(conns), "connect_failures": fails, "connect_error": ferr}
}

func (d *idle) run(args []string) map[string]any {
	return map[string]any{"conns": len(d.conns), "closed_by_server": d.closed.Load()}
}

func (d *idle) close() { abortAll(d.conns) }

// ---- many rooms ------------------------------------------------------------------------

type member struct {
	c     *Conn
	phase uint64
	last  []int64 // per caster: last sequence number seen
}

type roomsBench struct {
	*common
	nsock, nrooms, minM, maxM, ncast int
	seed                             int64
	members                          []*member
	sizes                            []int
	memberships                      int64

	joined                          atomic.Int64
	phase                           atomic.Uint64
	delivered, dup, ooo, stale, bad atomic.Int64
	readErrs, lastDelivery          atomic.Int64
	hist                            Hist
}

func (r *roomsBench) setup() map[string]any {
	conns, fails, ferr := r.dialAll(r.nsock)
	if r.ncast > len(conns) {
		r.ncast = len(conns)
	}
	for _, c := range conns {
		m := &member{c: c, last: make([]int64, r.ncast)}
		r.members = append(r.members, m)
		go r.reader(m)
	}
	rng := rand.New(rand.NewSource(r.seed))
	plan := make([][]string, len(r.members))
	r.sizes = make([]int, r.nrooms)
	for room := 0; room < r.nrooms; room++ {
		size := r.minM + rng.Intn(r.maxM-r.minM+1)
		if size > len(r.members) {
			size = len(r.members)
		}
		r.sizes[room] = size
		for _, mi := range rng.Perm(len(r.members))[:size] {
			plan[mi] = append(plan[mi], "r"+strconv.Itoa(room))
		}
		r.memberships += int64(size)
	}
	var wg sync.WaitGroup
	for i, m := range r.members {
		wg.Add(1)
		go func(m *member, rooms []string) {
			defer wg.Done()
			for _, name := range rooms {
				m.c.Emit("join", []byte(name))
			}
		}(m, plan[i])
		if i%r.dialConc == r.dialConc-1 {
			wg.Wait()
		}
	}
	wg.Wait()
	deadline := time.Now().Add(r.joinWait)
	for r.joined.Load() < r.memberships && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(r.settle)
	return map[string]any{"sockets": len(r.members), "rooms": r.nrooms, "memberships": r.memberships,
		"joined": r.joined.Load(), "casters": r.ncast, "connect_failures": fails, "connect_error": ferr}
}

func (r *roomsBench) reader(m *member) {
	for {
		ev, p, err := m.c.Read()
		if err != nil {
			r.readErrs.Add(1)
			return
		}
		switch ev {
		case "joined":
			r.joined.Add(1)
		case "m":
			r.onMsg(m, p)
		}
	}
}

func (r *roomsBench) onMsg(m *member, p []byte) {
	now := nowNs()
	phase, caster, seq, ts, ok := readPayload(p)
	if !ok || int(caster) >= len(m.last) {
		r.bad.Add(1)
		return
	}
	if phase != r.phase.Load() {
		r.stale.Add(1)
		return
	}
	if m.phase != phase {
		for i := range m.last {
			m.last[i] = -1
		}
		m.phase = phase
	}
	s := int64(seq)
	switch {
	case s == m.last[caster]:
		r.dup.Add(1)
		return
	case s < m.last[caster]:
		r.ooo.Add(1)
	default:
		m.last[caster] = s
	}
	r.hist.Record(time.Duration(now - ts))
	r.lastDelivery.Store(now)
	r.delivered.Add(1)
}

func (r *roomsBench) run(args []string) map[string]any {
	rate := argF(args, 0, 0)
	casts := int(argF(args, 1, 10000))
	capS := argF(args, 2, 30)
	window := int64(argF(args, 3, 64))
	phase := r.phase.Add(1)
	for _, a := range []*atomic.Int64{&r.delivered, &r.dup, &r.ooo, &r.stale, &r.bad} {
		a.Store(0)
	}
	r.hist.Reset()
	rng := rand.New(rand.NewSource(r.seed + int64(phase)))
	body := newPayload(r.size)
	seqs := make([]uint64, r.ncast)
	var expected int64
	maxOut := window * int64(r.maxM)
	outstanding := func() bool { return expected-r.delivered.Load() >= maxOut }
	cpu0 := cpuSeconds()
	t0 := nowNs()
	deadline := t0 + int64(capS*1e9)
	sent := 0
	var sendErr error
	for i := 0; i < casts; i++ {
		ts, ok := pace(i, rate, t0, outstanding, deadline)
		if !ok {
			break
		}
		caster := i % r.ncast
		room := rng.Intn(r.nrooms)
		buf := append([]byte("r"+strconv.Itoa(room)+"|"), body...)
		fillPayload(buf[len(buf)-len(body):], 'R', phase, uint64(caster), seqs[caster], ts)
		seqs[caster]++
		expected += int64(r.sizes[room])
		if sendErr = r.members[caster].c.Emit("pub", buf); sendErr != nil {
			break
		}
		sent++
	}
	pubEnd := nowNs()
	drain(func() bool { return r.delivered.Load() >= expected }, r.delivered.Load, 5*time.Second)
	end := r.lastDelivery.Load()
	if end < t0 {
		end = nowNs()
	}
	elapsed := float64(end-t0) / 1e9
	delivered := r.delivered.Load()
	res := map[string]any{
		"sockets": len(r.members), "rooms": r.nrooms, "rate": rate, "window": window, "casts": sent,
		"expected": expected, "delivered": delivered, "missing": expected - delivered,
		"duplicates": r.dup.Load(), "out_of_order": r.ooo.Load(), "stale": r.stale.Load(), "bad": r.bad.Load(),
		"elapsed_s": elapsed, "publish_s": float64(pubEnd-t0) / 1e9,
		"casts_per_s": float64(sent) / elapsed, "deliveries_per_s": float64(delivered) / elapsed,
		"client_cpu_s": cpuSeconds() - cpu0, "read_errors": r.readErrs.Load(),
	}
	if sendErr != nil {
		res["send_error"] = sendErr.Error()
	}
	for key, v := range r.hist.Summary() {
		res[key] = v
	}
	return res
}

func (r *roomsBench) close() {
	for _, m := range r.members {
		m.c.Abort()
	}
}
