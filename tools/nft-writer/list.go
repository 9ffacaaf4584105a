package main

// What the agent reads back: every rule's chain, handle, comment and counters, and the elements (with
// their counters) of the dynamic dropped-flow sets. The static sets and maps, the bulk of a large table,
// are never read.

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type ListedRule struct {
	Chain    string    `json:"chain"`
	Handle   uint64    `json:"handle"`
	Comment  string    `json:"comment,omitempty"`
	Counters []Counter `json:"counters,omitempty"`
}

type FlowElement struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Proto   int    `json:"proto"`
	Dport   int    `json:"dport"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type FlowSetListing struct {
	Name     string        `json:"name"`
	Elements []FlowElement `json:"elements"`
}

type Listing struct {
	Exists   bool             `json:"exists"`
	Handle   uint64           `json:"handle,omitempty"`
	Rules    []ListedRule     `json:"rules,omitempty"`
	FlowSets []FlowSetListing `json:"flowSets,omitempty"`
}

func list(c *conn, table string) (*Listing, error) {
	tables, err := c.request(msgGetTable, 0, func(e *enc) { e.str(unix.NFTA_TABLE_NAME, table) })
	var ke kernelError
	if errors.As(err, &ke) && ke.code == -int32(unix.ENOENT) {
		return &Listing{Exists: false}, nil
	}
	if err != nil {
		return nil, err
	}
	l := &Listing{Exists: true}
	if len(tables) > 0 {
		if h, ok := attrMap(tables[0])[attrTableHandle]; ok && len(h) == 8 {
			l.Handle = binary.BigEndian.Uint64(h)
		}
	}
	rules, err := c.request(msgGetRule, nlmFDump, func(e *enc) { e.str(unix.NFTA_RULE_TABLE, table) })
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		m := attrMap(r)
		if cstr(m[unix.NFTA_RULE_TABLE]) != table {
			continue
		}
		lr := ListedRule{Chain: cstr(m[unix.NFTA_RULE_CHAIN])}
		if h := m[unix.NFTA_RULE_HANDLE]; len(h) == 8 {
			lr.Handle = binary.BigEndian.Uint64(h)
		}
		if ud := m[unix.NFTA_RULE_USERDATA]; len(ud) >= 2 {
			// libnftnl TLVs: type, length, value; the comment is type 0.
			for i := 0; i+2 <= len(ud); {
				t, n := ud[i], int(ud[i+1])
				if i+2+n > len(ud) {
					break
				}
				if t == 0 {
					lr.Comment = cstr(ud[i+2 : i+2+n])
				}
				i += 2 + n
			}
		}
		for _, x := range parseAttrs(m[unix.NFTA_RULE_EXPRESSIONS]) {
			if c, ok := counterOf(x.data); ok {
				lr.Counters = append(lr.Counters, c)
			}
		}
		l.Rules = append(l.Rules, lr)
	}
	sets, err := c.request(msgGetSet, nlmFDump, func(e *enc) { e.str(unix.NFTA_SET_TABLE, table) })
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		m := attrMap(s)
		if cstr(m[unix.NFTA_SET_TABLE]) != table {
			continue
		}
		flags := m[unix.NFTA_SET_FLAGS]
		if len(flags) != 4 || binary.BigEndian.Uint32(flags)&setFlagEval == 0 {
			continue
		}
		name := cstr(m[unix.NFTA_SET_NAME])
		fs, err := flowElements(c, table, name)
		if err != nil {
			return nil, err
		}
		l.FlowSets = append(l.FlowSets, fs)
	}
	return l, nil
}

// counterOf reads an expression (NFTA_EXPR_NAME, NFTA_EXPR_DATA) if it is a counter.
func counterOf(b []byte) (Counter, bool) {
	m := attrMap(b)
	if cstr(m[unix.NFTA_EXPR_NAME]) != "counter" {
		return Counter{}, false
	}
	d := attrMap(m[unix.NFTA_EXPR_DATA])
	var c Counter
	if v := d[unix.NFTA_COUNTER_PACKETS]; len(v) == 8 {
		c.Packets = binary.BigEndian.Uint64(v)
	}
	if v := d[unix.NFTA_COUNTER_BYTES]; len(v) == 8 {
		c.Bytes = binary.BigEndian.Uint64(v)
	}
	return c, true
}

func flowElements(c *conn, table, set string) (FlowSetListing, error) {
	out := FlowSetListing{Name: set, Elements: []FlowElement{}}
	msgs, err := c.request(msgGetSetElem, nlmFDump, func(e *enc) {
		e.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
		e.str(unix.NFTA_SET_ELEM_LIST_SET, set)
	})
	if err != nil {
		return out, err
	}
	for _, msg := range msgs {
		for _, el := range parseAttrs(attrMap(msg)[unix.NFTA_SET_ELEM_LIST_ELEMENTS]) {
			m := attrMap(el.data)
			key := attrMap(m[unix.NFTA_SET_ELEM_KEY])[unix.NFTA_DATA_VALUE]
			// saddr . daddr . l4proto . dport, fields padded to 4 bytes: 16 bytes (IPv4) or 40 (IPv6).
			alen := 4
			if len(key) == 40 {
				alen = 16
			} else if len(key) != 16 {
				continue
			}
			src, _ := netip.AddrFromSlice(key[:alen])
			dst, _ := netip.AddrFromSlice(key[alen : 2*alen])
			fe := FlowElement{Src: src.String(), Dst: dst.String(), Proto: int(key[2*alen]), Dport: int(binary.BigEndian.Uint16(key[2*alen+4:]))}
			if x, ok := m[unix.NFTA_SET_ELEM_EXPR]; ok {
				if cnt, ok := counterOf(x); ok {
					fe.Packets, fe.Bytes = cnt.Packets, cnt.Bytes
				}
			}
			if xs, ok := m[attrSetElemExpressions]; ok {
				for _, x := range parseAttrs(xs) {
					if cnt, ok := counterOf(x.data); ok {
						fe.Packets, fe.Bytes = cnt.Packets, cnt.Bytes
					}
				}
			}
			out.Elements = append(out.Elements, fe)
		}
	}
	return out, nil
}

const attrSetElemExpressions = 0x11
const attrTableHandle = 4
