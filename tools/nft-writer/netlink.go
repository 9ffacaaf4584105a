package main

// A minimal nfnetlink client: attribute encoding, one batch per transaction in one sendmsg, and the
// kernel's answers. The batch is built by hand (not with nftables.Conn.Flush) because a table swap is
// thousands of messages: Flush asks for an ack per message and reads them one by one, and its element
// messages are not split below the 64 KiB attribute limit a large interval set exceeds.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	nlaFNested = 0x8000
	// nfnetlink subsystem of nf_tables.
	subsysNftables = 10
	// Batch messages.
	msgBatchBegin = 0x10
	msgBatchEnd   = 0x11
	// nf_tables message types.
	msgNewTable   = 0
	msgGetTable   = 1
	msgDelTable   = 2
	msgNewChain   = 3
	msgNewRule    = 6
	msgGetRule    = 7
	msgNewSet     = 9
	msgGetSet     = 10
	msgNewSetElem = 12
	msgGetSetElem = 13
	msgDelSetElem = 14

	nlmFRequest = 0x1
	nlmFMulti   = 0x2
	// NLM_F_DUMP_INTR: the dump was interrupted by a change (its parts may be of two generations).
	nlmFDumpIntr = 0x10
	nlmFAck      = 0x4
	nlmFDump     = 0x300
	nlmFCreate   = 0x400
	nlmFAppend   = 0x800

	nlmsgError = 2
	nlmsgDone  = 3

	familyInet = 1 // NFPROTO_INET
)

// enc builds netlink attributes.
type enc struct{ b []byte }

func (e *enc) attr(t uint16, data []byte) {
	l := 4 + len(data)
	e.b = binary.LittleEndian.AppendUint16(e.b, uint16(l))
	e.b = binary.LittleEndian.AppendUint16(e.b, t)
	e.b = append(e.b, data...)
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *enc) str(t uint16, s string) { e.attr(t, append([]byte(s), 0)) }
func (e *enc) u32(t uint16, v uint32) { e.attr(t, binary.BigEndian.AppendUint32(nil, v)) }
func (e *enc) u64(t uint16, v uint64) { e.attr(t, binary.BigEndian.AppendUint64(nil, v)) }

// nest writes a nested attribute whose content f writes.
func (e *enc) nest(t uint16, f func()) {
	start := len(e.b)
	e.b = append(e.b, 0, 0, 0, 0)
	f()
	binary.LittleEndian.PutUint16(e.b[start:], uint16(len(e.b)-start))
	binary.LittleEndian.PutUint16(e.b[start+2:], t|nlaFNested)
}

// message is one nf_tables message of a batch, with what it does for error messages.
type message struct {
	typ   uint16
	flags uint16
	data  []byte // attributes (after the nfgenmsg header)
	what  string
}

// batch is one nf_tables transaction.
type batch struct {
	msgs []message
}

func (b *batch) add(typ, flags uint16, what string, f func(e *enc)) {
	e := enc{}
	f(&e)
	b.msgs = append(b.msgs, message{typ: typ, flags: flags, data: e.b, what: what})
}

func nlmsg(buf []byte, typ, flags uint16, seq uint32, family uint8, resID uint16, data []byte) []byte {
	l := 16 + 4 + len(data)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(l))
	buf = binary.LittleEndian.AppendUint16(buf, typ)
	buf = binary.LittleEndian.AppendUint16(buf, flags)
	buf = binary.LittleEndian.AppendUint32(buf, seq)
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = append(buf, family, 0)
	buf = binary.BigEndian.AppendUint16(buf, resID)
	buf = append(buf, data...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// conn is a NETLINK_NETFILTER socket in the namespace this process runs in.
type conn struct {
	fd     int
	seq    uint32
	sndbuf int
	rbuf   []byte
}

func dial() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Errors without the echoed request (a refused element chunk would echo 64 KiB), with the kernel's message.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	// Never wait forever for the kernel's answer (the agent would hang with it).
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 120})
	return &conn{fd: fd, seq: 1, rbuf: make([]byte, 1<<20)}, nil
}

// commit sends the batch as one transaction and waits for the kernel's verdict: nil, or the first
// refusal with what it was (the kernel applied nothing then).
func (c *conn) commit(b *batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	size := 40
	for _, m := range b.msgs {
		size += 20 + len(m.data) + 3
	}
	buf := make([]byte, 0, size)
	begin := c.seq
	c.seq++
	buf = nlmsg(buf, msgBatchBegin, nlmFRequest, begin, unix.AF_UNSPEC, subsysNftables, nil)
	what := make(map[uint32]string, len(b.msgs))
	var last uint32
	for i, m := range b.msgs {
		flags := nlmFRequest | m.flags
		if i == len(b.msgs)-1 {
			// The only ack asked for: once it (or an error for it) arrives, the kernel has answered
			// every message (it reports all errors of a batch together, after processing all of it).
			flags |= nlmFAck
		}
		last = c.seq
		what[c.seq] = m.what
		buf = nlmsg(buf, subsysNftables<<8|m.typ, flags, c.seq, familyInet, 0, m.data)
		c.seq++
	}
	buf = nlmsg(buf, msgBatchEnd, nlmFRequest, c.seq, unix.AF_UNSPEC, subsysNftables, nil)
	c.seq++
	// One sendmsg: the kernel processes a batch only within one datagram.
	if need := len(buf) + 4096; need > c.sndbuf {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, need); err != nil {
			return fmt.Errorf("netlink send buffer of %d bytes: %w", need, err)
		}
		c.sndbuf = need
	}
	if err := unix.Sendto(c.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	var errs []string
	done := false
	for !done {
		msgs, err := c.recv(0)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.typ != nlmsgError || len(m.data) < 4 {
				continue
			}
			code := int32(binary.LittleEndian.Uint32(m.data))
			if code != 0 {
				w := what[m.seq]
				if m.seq == begin {
					w = "commit"
				}
				errs = append(errs, fmt.Sprintf("%s: %s%s", w, errnoText(code), extAckText(m.data)))
			}
			// The ack (or error) of the last message, or an error about the whole batch (the kernel
			// could not even queue the per-message answers).
			if m.seq == last || (m.seq == begin && code != 0) {
				done = true
			}
		}
	}
	// Anything else queued (a commit error comes before the acks).
	for {
		msgs, err := c.recv(unix.MSG_DONTWAIT)
		if err != nil || len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if m.typ == nlmsgError && len(m.data) >= 4 {
				if code := int32(binary.LittleEndian.Uint32(m.data)); code != 0 {
					errs = append(errs, fmt.Sprintf("%s: %s", what[m.seq], errnoText(code)))
				}
			}
		}
	}
	if len(errs) > 0 {
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Sprintf("and %d more", len(errs)-3))
		}
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func errnoText(code int32) string {
	s := unix.Errno(-code).Error()
	if s == "" {
		return fmt.Sprintf("errno %d", -code)
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// extAckText is the kernel's extended-ack message (NLMSGERR_ATTR_MSG), if any, after the capped header.
func extAckText(data []byte) string {
	if len(data) < 20 {
		return ""
	}
	for _, a := range parseAttrs(data[20:]) {
		if a.typ == unix.NLMSGERR_ATTR_MSG {
			return " (" + cstr(a.data) + ")"
		}
	}
	return ""
}

type rmsg struct {
	typ   uint16
	flags uint16
	seq   uint32
	data  []byte
}

func (c *conn) recv(flags int) ([]rmsg, error) {
	n, _, err := unix.Recvfrom(c.fd, c.rbuf, flags)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) && flags&unix.MSG_DONTWAIT != 0 {
			return nil, nil
		}
		if errors.Is(err, unix.EAGAIN) {
			return nil, errors.New("netlink receive: no answer from the kernel within 120 s")
		}
		return nil, fmt.Errorf("netlink receive: %w", err)
	}
	var out []rmsg
	b := c.rbuf[:n]
	for len(b) >= 16 {
		l := int(binary.LittleEndian.Uint32(b))
		if l < 16 || l > len(b) {
			break
		}
		out = append(out, rmsg{typ: binary.LittleEndian.Uint16(b[4:]), flags: binary.LittleEndian.Uint16(b[6:]), seq: binary.LittleEndian.Uint32(b[8:]), data: append([]byte(nil), b[16:l]...)})
		b = b[(l+3)&^3:]
	}
	return out, nil
}

// request sends one nf_tables request (a dump or a get) and returns the payloads (after nfgenmsg) of its answers.
func (c *conn) request(typ uint16, flags uint16, attrs func(e *enc)) ([][]byte, error) {
	e := enc{}
	attrs(&e)
	seq := c.seq
	c.seq++
	buf := nlmsg(nil, subsysNftables<<8|typ, nlmFRequest|nlmFAck|flags, seq, familyInet, 0, e.b)
	if err := unix.Sendto(c.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var out [][]byte
	interrupted := false
	for {
		msgs, err := c.recv(0)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue
			}
			// A dump the kernel marks interrupted (the ruleset changed while it was read, e.g. a table swap
			// by another process) may mix two generations: refuse it rather than answer with a mixture.
			if m.flags&nlmFDumpIntr != 0 {
				interrupted = true
			}
			switch m.typ {
			case nlmsgDone:
				if interrupted {
					return nil, fmt.Errorf("the ruleset changed while it was read (dump interrupted); read again")
				}
				return out, nil
			case nlmsgError:
				code := int32(binary.LittleEndian.Uint32(m.data))
				if code != 0 {
					return nil, kernelError{code}
				}
				if flags&nlmFDump == 0 {
					return out, nil
				}
			default:
				if len(m.data) >= 4 {
					out = append(out, m.data[4:])
				}
				if flags&nlmFDump == 0 && m.flags&nlmFMulti == 0 {
					// A get's answer comes before its ack; keep reading for the ack.
					continue
				}
			}
		}
	}
}

// cstr is a netlink string attribute without its NUL terminator.
func cstr(b []byte) string { return strings.TrimRight(string(b), "\x00") }

type kernelError struct{ code int32 }

func (k kernelError) Error() string { return errnoText(k.code) }

type attr struct {
	typ  uint16
	data []byte
}

func parseAttrs(b []byte) []attr {
	var out []attr
	for len(b) >= 4 {
		l := int(binary.LittleEndian.Uint16(b))
		if l < 4 || l > len(b) {
			break
		}
		out = append(out, attr{typ: binary.LittleEndian.Uint16(b[2:]) &^ nlaFNested, data: b[4:l]})
		b = b[min((l+3)&^3, len(b)):]
	}
	return out
}

func attrMap(b []byte) map[uint16][]byte {
	m := map[uint16][]byte{}
	for _, a := range parseAttrs(b) {
		m[a.typ] = a.data
	}
	return m
}
