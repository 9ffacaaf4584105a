package main

// The table model of provider/src/realize/nftables/ir.ts as JSON (bigints as decimal strings).

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type Verdict struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
}

// Element is one set or map element, decoded from the compact form the agent sends (see parseElements).
type Element struct {
	Lo, Hi   []byte // address (4 or 16 bytes) or port (2 bytes) bounds, big-endian; a rule-map's key: Lo only, a mark
	Verdict  *Verdict
	Mark     []byte // addr-map: the rule number the addresses map to (a mark)
	Proto    byte   // service-set: protocol and port bounds
	PLo, PHi uint16
}

// NamedSet is a set or map of the table. Its elements come as one string (E): elements separated by
// ",", fields by " ": "LO HI" (set), "LO HI RULE" (addr-map), "RULE VERDICT" (rule-map), "PLO PHI VERDICT"
// (port-map, decimal), "LO HI PROTO PLO PHI" (service-set); addresses and rule numbers in hexadecimal,
// VERDICT "a" (accept), "d" (drop) or "g:CHAIN". Decoding that costs a fraction of decoding the same
// elements as JSON objects of bigints.
type NamedSet struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	V       int    `json:"v"`
	Timeout int    `json:"timeout"`
	Size    int    `json:"size"`
	E       string `json:"e"`
}

func parseVerdict(s string) (*Verdict, error) {
	switch {
	case s == "a":
		return &Verdict{Kind: "accept"}, nil
	case s == "d":
		return &Verdict{Kind: "drop"}, nil
	case strings.HasPrefix(s, "g:"):
		return &Verdict{Kind: "goto", Target: s[2:]}, nil
	}
	return nil, fmt.Errorf("bad verdict %q", s)
}

func parseAddr(v int, s string) ([]byte, error) {
	size := 4
	if v == 6 {
		size = 16
	}
	if len(s) > 2*size {
		return nil, fmt.Errorf("address %s too long for IPv%d", s, v)
	}
	b, err := hex.DecodeString(strings.Repeat("0", 2*size-len(s)) + s)
	if err != nil {
		return nil, fmt.Errorf("bad address %q", s)
	}
	return b, nil
}

// parseMark decodes a rule number (hexadecimal) as nft encodes a mark: 4 bytes in host byte order (the
// mark datatype is host-endian, as the ct mark register the rule compares it with).
func parseMark(s string) ([]byte, error) {
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("bad rule number %q", s)
	}
	return binary.NativeEndian.AppendUint32(nil, uint32(n)), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// parseElements decodes a set's element string (see NamedSet).
func parseElements(kind string, v int, e string) ([]Element, error) {
	if e == "" {
		return nil, nil
	}
	recs := strings.Split(e, ",")
	out := make([]Element, len(recs))
	for i, r := range recs {
		f := strings.Split(r, " ")
		el := &out[i]
		var err error
		bad := func() error { return fmt.Errorf("element %q of a %s: %v", r, kind, err) }
		switch kind {
		case "set", "addr-map":
			if len(f) != 2+btoi(kind == "addr-map") {
				return nil, fmt.Errorf("element %q of a %s: wrong field count", r, kind)
			}
			if el.Lo, err = parseAddr(v, f[0]); err != nil {
				return nil, bad()
			}
			if el.Hi, err = parseAddr(v, f[1]); err != nil {
				return nil, bad()
			}
			if kind == "addr-map" {
				if el.Mark, err = parseMark(f[2]); err != nil {
					return nil, bad()
				}
			}
		case "rule-map":
			if len(f) != 2 {
				return nil, fmt.Errorf("element %q of a %s: wrong field count", r, kind)
			}
			if el.Lo, err = parseMark(f[0]); err != nil {
				return nil, bad()
			}
			if el.Verdict, err = parseVerdict(f[1]); err != nil {
				return nil, bad()
			}
		case "port-map":
			if len(f) != 3 {
				return nil, fmt.Errorf("element %q of a %s: wrong field count", r, kind)
			}
			lo, err1 := parsePort(f[0])
			hi, err2 := parsePort(f[1])
			if err = errors.Join(err1, err2); err != nil {
				return nil, bad()
			}
			el.Lo, el.Hi = binary.BigEndian.AppendUint16(nil, lo), binary.BigEndian.AppendUint16(nil, hi)
			if el.Verdict, err = parseVerdict(f[2]); err != nil {
				return nil, bad()
			}
		case "service-set":
			if len(f) != 5 {
				return nil, fmt.Errorf("element %q of a %s: wrong field count", r, kind)
			}
			if el.Lo, err = parseAddr(v, f[0]); err != nil {
				return nil, bad()
			}
			if el.Hi, err = parseAddr(v, f[1]); err != nil {
				return nil, bad()
			}
			p, ok := protoNumbers[f[2]]
			if !ok {
				return nil, fmt.Errorf("element %q of a %s: unknown protocol", r, kind)
			}
			el.Proto = p
			lo, err1 := parsePort(f[3])
			hi, err2 := parsePort(f[4])
			if err = errors.Join(err1, err2); err != nil {
				return nil, bad()
			}
			el.PLo, el.PHi = lo, hi
		default:
			return nil, fmt.Errorf("a %s has no static elements", kind)
		}
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type Match struct {
	M         string   `json:"m"`
	States    []string `json:"states"`
	Dir       string   `json:"dir"`
	Name      string   `json:"name"`
	V         int      `json:"v"`
	Field     string   `json:"field"`
	Op        string   `json:"op"`
	Addr      string   `json:"addr"`
	Set       string   `json:"set"`
	Protocols []string `json:"protocols"`
	Type      *int     `json:"type"`
	Code      *int     `json:"code"`
}

// Vmap is a rule's map lookup: key "dport" (`th dport vmap @Map`) or "class" (`ct mark set ip saddr map
// @Map ct mark vmap @Rules`: the peer address's rule number, through the connection's mark, to the rule's chain).
type Vmap struct {
	Key   string `json:"key"`
	V     int    `json:"v"`
	Field string `json:"field"`
	Map   string `json:"map"`
	Rules string `json:"rules"`
}

type RecordFlow struct {
	V   int    `json:"v"`
	Set string `json:"set"`
}

type Rule struct {
	Match      []Match     `json:"match"`
	Vmap       *Vmap       `json:"vmap"`
	Counter    bool        `json:"counter"`
	CtMark     *uint32     `json:"ctMark"`
	RecordFlow *RecordFlow `json:"recordFlow"`
	Log        *string     `json:"log"`
	Verdict    *Verdict    `json:"verdict"`
	Comment    *string     `json:"comment"`
}

type Chain struct {
	Name  string `json:"name"`
	Hook  string `json:"hook"`
	Rules []Rule `json:"rules"`
}

type Table struct {
	Family string     `json:"family"`
	Name   string     `json:"name"`
	Sets   []NamedSet `json:"sets"`
	Chains []Chain    `json:"chains"`
}

// SetChange is the element update of one set: its kind and family (how keys are encoded) with the
// elements to delete and to add, in the form of NamedSet.E.
type SetChange struct {
	Set    NamedSet `json:"set"`
	Delete string   `json:"delete"`
	Add    string   `json:"add"`
}

type Request struct {
	ID      int         `json:"id"`
	Op      string      `json:"op"`
	Table   *Table      `json:"table"` // replace
	Name    string      `json:"name"`  // elements, list
	Changes []SetChange `json:"changes"`
}
