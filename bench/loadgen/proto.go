package main

// Wire framing of the two protocols the load generator speaks.
//
// sac-sock (PROTOCOL.md sections 2-3):
//   client -> server: <event> 0x02 <payload>               (sent as a binary frame)
//   server -> client: <event> 0x01 <type char> 0x02 <payload>
// Socket.IO v5 over Engine.IO v4, websocket transport only:
//   server "0{...}" open, client "40" connect, server "40{...}" connected,
//   events "42[\"event\",\"payload\"]" both ways, server ping "2", client pong "3".
// gopeer: sac-sock framing against the upstream Go test server (../shared/peers/gopeer),
//   whose handlers have other names: "join" answers event "echo" "joined room:R"
//   (read here as "joined" R), "pub" room|data is sent as "roomcast"
//   {"room":R,"data":data} and its casts arrive as event "roomcast" (read as "m").
// Payloads used here are ASCII without quotes or backslashes, so no JSON escaping
// is needed on either side.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	protoSacsock  = "sacsock"
	protoSocketIO = "socketio"
	protoGoPeer   = "gopeer"
)

var goJoined = []byte("joined room:")

// Conn is one client websocket of either protocol. Emit is safe from any goroutine;
// Read must be called from one goroutine only.
type Conn struct {
	ws    *websocket.Conn
	proto string
	wmu   sync.Mutex
	wbuf  []byte
}

var dialer = &websocket.Dialer{
	HandshakeTimeout: 60 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  1024,
	NetDialContext:   (&net.Dialer{Timeout: 60 * time.Second}).DialContext,
}

// wsURL turns a base URL (ws://host:port/path) into the URL to dial for proto.
func wsURL(base, proto string) string {
	if proto == protoSocketIO {
		u := strings.TrimRight(base, "/")
		if !strings.Contains(u, "/socket.io") {
			u += "/socket.io"
		}
		return u + "/?EIO=4&transport=websocket"
	}
	return base
}

// Dial opens one connection and completes the protocol's handshake.
func Dial(base, proto string) (*Conn, error) {
	d := *dialer
	hdr := http.Header{}
	if proto != protoSocketIO {
		d.Subprotocols = []string{"sac-sock"}
	}
	ws, resp, err := d.Dial(wsURL(base, proto), hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c := &Conn{ws: ws, proto: proto}
	if proto == protoSocketIO {
		if err := c.sioHandshake(); err != nil {
			c.Abort()
			return nil, err
		}
	}
	return c, nil
}

func (c *Conn) sioHandshake() error {
	c.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer c.ws.SetReadDeadline(time.Time{})
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("engine.io: expected open packet, got %q", msg)
	}
	if err := c.write(websocket.TextMessage, []byte("40")); err != nil {
		return err
	}
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(msg, []byte("40")):
			return nil
		case bytes.HasPrefix(msg, []byte("44")):
			return fmt.Errorf("socket.io: connect refused: %q", msg)
		case len(msg) == 1 && msg[0] == '2':
			if err := c.write(websocket.TextMessage, []byte("3")); err != nil {
				return err
			}
		}
	}
}

func (c *Conn) write(kind int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(kind, data)
}

// Emit sends event with an ASCII payload.
func (c *Conn) Emit(event string, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	if c.proto == protoGoPeer && event == "pub" {
		room, data, _ := bytes.Cut(payload, []byte("|"))
		b = append(b, "roomcast\x02{\"room\":\""...)
		b = append(b, room...)
		b = append(b, `","data":"`...)
		b = append(b, data...)
		b = append(b, `"}`...)
		c.wbuf = b
		return c.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	if c.proto != protoSocketIO {
		b = append(b, event...)
		b = append(b, 0x02)
		b = append(b, payload...)
		c.wbuf = b
		return c.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	b = append(b, `42["`...)
	b = append(b, event...)
	b = append(b, `","`...)
	b = append(b, payload...)
	b = append(b, `"]`...)
	c.wbuf = b
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

var errSkip = errors.New("not an event")

// Read returns the next event and its payload (the payload aliases an internal buffer
// only until the next Read). Socket.IO pings are answered here.
func (c *Conn) Read() (string, []byte, error) {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return "", nil, err
		}
		ev, payload, err := c.parse(msg)
		if err == errSkip {
			continue
		}
		return ev, payload, err
	}
}

func (c *Conn) parse(msg []byte) (string, []byte, error) {
	if c.proto != protoSocketIO {
		i := bytes.IndexByte(msg, 0x01)
		if i < 0 {
			return "", nil, fmt.Errorf("sac-sock: no 0x01 in %q", msg)
		}
		j := bytes.IndexByte(msg[i:], 0x02)
		if j < 0 {
			return "", nil, fmt.Errorf("sac-sock: no 0x02 in %q", msg)
		}
		ev, payload := string(msg[:i]), msg[i+j+1:]
		if c.proto == protoGoPeer {
			switch {
			case ev == "roomcast":
				ev = "m"
			case ev == "echo" && bytes.HasPrefix(payload, goJoined):
				ev, payload = "joined", payload[len(goJoined):]
			}
		}
		return ev, payload, nil
	}
	if len(msg) == 1 && msg[0] == '2' {
		if err := c.write(websocket.TextMessage, []byte("3")); err != nil {
			return "", nil, err
		}
		return "", nil, errSkip
	}
	if !bytes.HasPrefix(msg, []byte(`42["`)) {
		return "", nil, errSkip
	}
	rest := msg[4:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return "", nil, fmt.Errorf("socket.io: bad event %q", msg)
	}
	ev := string(rest[:q])
	rest = rest[q+1:]
	// ,"payload"]
	if len(rest) >= 4 && rest[0] == ',' && rest[1] == '"' {
		end := bytes.LastIndexByte(rest, '"')
		return ev, rest[2:end], nil
	}
	return ev, nil, nil
}

// Abort closes at once with a TCP reset (no TIME_WAIT left on the client's ports).
func (c *Conn) Abort() {
	if tc, ok := c.ws.NetConn().(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.ws.Close()
}
