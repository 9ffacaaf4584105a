package main

// The table model → nf_tables messages, as nft 1.0.6 sends them for the text provider/src/realize/nftables/render.ts
// renders (checked with `nft --debug=netlink` and by comparing `nft list table` in test/kernel/netlink-writer.test.ts):
// the same order of chains, sets and rules (so the kernel hands out the same handles; the named sets' elements come
// after the rules, see replaceBatch), same expressions and registers, same set
// flags, key types and user data (which `nft list` reads back).

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Attribute numbers of nf_tables.h used below (x/sys/unix names most; these it lacks or spells otherwise).
const (
	setFlagAnonymous = 0x1
	setFlagConstant  = 0x2
	setFlagInterval  = 0x4
	setFlagMap       = 0x8
	setFlagTimeout   = 0x10
	setFlagEval      = 0x20
	setFlagConcat    = 0x80

	attrSetDescConcat = 2
	attrSetFieldLen   = 1
	attrSetExpr       = 0x11
	attrSetElemKeyEnd = 10
	attrListElem      = 1

	elemFlagIntervalEnd = 1

	dataTypeVerdict = 0xffffff00

	typeMark    = 19 // a rule-map's keys, an addr-map's data
	typeIPv4    = 7
	typeIPv6    = 8
	typeProto   = 12
	typeService = 13

	verdictDrop   = 0
	verdictAccept = 1
	verdictGoto   = 0xfffffffc // NFT_GOTO (-4)
)

// Set user data nft writes (libnftnl udata TLVs: key byte order, data byte order, key typeof, data interval),
// which `nft list` needs to print the keys as nft would. Byte orders: 0 none (verdicts), 1 host (marks),
// 2 big-endian (addresses, ports).
var (
	udataBigEndianKey = []byte{0x00, 0x04, 0x02, 0x00, 0x00, 0x00}
	udataVerdictMap   = []byte{0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00}
	// addr-map (`ipv4_addr : mark`): big-endian keys, host-endian data.
	udataMarkMap = []byte{0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00}
	// rule-map (`mark : verdict`): host-endian keys, verdict data.
	udataRuleMap    = []byte{0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00}
	udataConcat     = []byte{0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00}
	udataL4protoSet = []byte{0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x03, 0x0e, 0x00, 0x04, 0x09, 0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x04, 0x10, 0x00, 0x00, 0x00}
	// NFTNL_UDATA_SET_ELEM_FLAGS = NFTNL_SET_ELEM_F_INTERVAL_OPEN: an interval reaching the top of the key space (no end element).
	udataElemOpen = []byte{0x01, 0x04, 0x01, 0x00, 0x00, 0x00}
)

var protoNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "ipv6-icmp": 58}

// maxElemBytes keeps the nested element list of one message below the 16-bit attribute length.
const maxElemBytes = 60000

type builder struct {
	b      *batch
	table  string
	setIDs map[string]uint32
	nextID uint32
	sets   map[string]*NamedSet
}

// replaceBatch: add the table (so the delete cannot fail), delete it, add the new one with everything in it.
func replaceBatch(t *Table) (*batch, error) {
	if t.Family != "inet" {
		return nil, fmt.Errorf("table %s: family %q; only inet is supported", t.Name, t.Family)
	}
	bd := &builder{b: &batch{}, table: t.Name, setIDs: map[string]uint32{}, sets: map[string]*NamedSet{}}
	bd.b.add(msgNewTable, 0, "add table "+t.Name, func(e *enc) { e.str(unix.NFTA_TABLE_NAME, t.Name); e.u32(unix.NFTA_TABLE_FLAGS, 0) })
	bd.b.add(msgDelTable, 0, "delete table "+t.Name, func(e *enc) { e.str(unix.NFTA_TABLE_NAME, t.Name) })
	bd.b.add(msgNewTable, 0, "add table "+t.Name, func(e *enc) { e.str(unix.NFTA_TABLE_NAME, t.Name); e.u32(unix.NFTA_TABLE_FLAGS, 0) })
	// Chains first (verdict map elements jump to them), then the sets, then the rules: nft's order for a
	// table block, so the kernel's handles come out the same.
	for _, c := range t.Chains {
		c := c
		bd.b.add(msgNewChain, nlmFCreate, "add chain "+c.Name, func(e *enc) {
			e.str(unix.NFTA_CHAIN_TABLE, t.Name)
			e.str(unix.NFTA_CHAIN_NAME, c.Name)
			if c.Hook != "" {
				hook := uint32(unix.NF_INET_LOCAL_IN)
				if c.Hook == "output" {
					hook = unix.NF_INET_LOCAL_OUT
				}
				e.str(unix.NFTA_CHAIN_TYPE, "filter")
				e.u32(unix.NFTA_CHAIN_POLICY, verdictAccept)
				e.nest(unix.NFTA_CHAIN_HOOK, func() {
					e.u32(unix.NFTA_HOOK_HOOKNUM, hook)
					e.u32(unix.NFTA_HOOK_PRIORITY, 0)
				})
			}
		})
	}
	for i := range t.Sets {
		s := &t.Sets[i]
		bd.sets[s.Name] = s
		if err := bd.addSet(s); err != nil {
			return nil, err
		}
	}
	for _, c := range t.Chains {
		for i, r := range c.Rules {
			if err := bd.addRule(c.Name, i, &r); err != nil {
				return nil, err
			}
		}
	}
	// The named sets' elements after the rules (nft sends them right after each set): the kernel binds a
	// rule's set by walking its transaction list back to the set's creation, and thousands of element
	// transactions on that path cost more than the rules themselves. Handles (chains, sets, rules) and what
	// the kernel holds at commit are the same either way.
	for i := range t.Sets {
		s := &t.Sets[i]
		if s.Kind == "flow-set" {
			continue
		}
		elems, err := parseElements(s.Kind, s.V, s.E)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
		if len(elems) > 0 {
			if err := bd.elements(msgNewSetElem, s, elems, bd.setIDs[s.Name], true); err != nil {
				return nil, err
			}
		}
	}
	return bd.b, nil
}

func (bd *builder) addSet(s *NamedSet) error {
	bd.nextID++
	id := bd.nextID
	bd.setIDs[s.Name] = id
	ip := uint32(typeIPv4)
	alen := uint32(4)
	if s.V == 6 {
		ip, alen = typeIPv6, 16
	}
	var flags, keyType, keyLen uint32
	var udata []byte
	// A map's data: a verdict (length 0) or a mark.
	isMap, dataType, dataLen := false, uint32(dataTypeVerdict), uint32(0)
	switch s.Kind {
	case "set":
		flags, keyType, keyLen, udata = setFlagInterval, ip, alen, udataBigEndianKey
	case "service-set":
		flags, keyType, keyLen, udata = setFlagInterval|setFlagConcat, ip<<12|typeProto<<6|typeService, alen+8, udataConcat
	case "port-map":
		flags, keyType, keyLen, udata, isMap = setFlagInterval|setFlagMap, typeService, 2, udataVerdictMap, true
	case "addr-map":
		flags, keyType, keyLen, udata, isMap = setFlagInterval|setFlagMap, ip, alen, udataMarkMap, true
		dataType, dataLen = typeMark, 4
	case "rule-map":
		// Single numbers: a hash map, no interval flag.
		flags, keyType, keyLen, udata, isMap = setFlagMap, typeMark, 4, udataRuleMap, true
	case "flow-set":
		flags, keyType, keyLen, udata = setFlagTimeout|setFlagEval, ip<<18|ip<<12|typeProto<<6|typeService, 2*alen+8, udataConcat
	default:
		return fmt.Errorf("set %s: unknown kind %q", s.Name, s.Kind)
	}
	bd.b.add(msgNewSet, nlmFCreate, "add set "+s.Name, func(e *enc) {
		e.str(unix.NFTA_SET_TABLE, bd.table)
		e.str(unix.NFTA_SET_NAME, s.Name)
		e.u32(unix.NFTA_SET_FLAGS, flags)
		e.u32(unix.NFTA_SET_KEY_TYPE, keyType)
		e.u32(unix.NFTA_SET_KEY_LEN, keyLen)
		if isMap {
			e.u32(unix.NFTA_SET_DATA_TYPE, dataType)
			e.u32(unix.NFTA_SET_DATA_LEN, dataLen)
		}
		e.u32(unix.NFTA_SET_ID, id)
		switch s.Kind {
		case "service-set":
			e.nest(unix.NFTA_SET_DESC, func() {
				e.nest(attrSetDescConcat, func() {
					for _, l := range []uint32{alen, 1, 2} {
						e.nest(attrListElem, func() { e.u32(attrSetFieldLen, l) })
					}
				})
			})
		case "flow-set":
			e.nest(unix.NFTA_SET_DESC, func() { e.u32(unix.NFTA_SET_DESC_SIZE, uint32(s.Size)) })
			e.u64(unix.NFTA_SET_TIMEOUT, uint64((time.Duration(s.Timeout) * time.Second).Milliseconds()))
		}
		e.attr(unix.NFTA_SET_USERDATA, udata)
		if s.Kind == "flow-set" {
			// Every element gets its own counter.
			e.nest(attrSetExpr, func() {
				e.str(unix.NFTA_EXPR_NAME, "counter")
				e.nest(unix.NFTA_EXPR_DATA, func() {})
			})
		}
	})
	return nil
}

// elements adds NEWSETELEM/DELSETELEM messages for elems of s, split below the attribute size limit.
func (bd *builder) elements(typ uint16, s *NamedSet, elems []Element, setID uint32, withData bool) error {
	enc1 := enc{}
	flush := func() {
		if len(enc1.b) == 0 {
			return
		}
		list := enc1.b
		flags := uint16(nlmFCreate)
		what := "add elements to set " + s.Name
		if typ == msgDelSetElem {
			flags = 0
			what = "delete elements from set " + s.Name
		}
		bd.b.add(typ, flags, what, func(e *enc) {
			e.str(unix.NFTA_SET_ELEM_LIST_TABLE, bd.table)
			e.str(unix.NFTA_SET_ELEM_LIST_SET, s.Name)
			if setID != 0 {
				e.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, setID)
			}
			e.attr(unix.NFTA_SET_ELEM_LIST_ELEMENTS|nlaFNested, list)
		})
		enc1 = enc{}
	}
	for i := range elems {
		if err := encodeElement(&enc1, s, &elems[i], withData); err != nil {
			return err
		}
		if len(enc1.b) > maxElemBytes {
			flush()
		}
	}
	flush()
	return nil
}

func verdictData(e *enc, v *Verdict) error {
	code := uint32(0)
	switch v.Kind {
	case "accept":
		code = verdictAccept
	case "drop":
		code = verdictDrop
	case "goto":
		code = verdictGoto
	default:
		return fmt.Errorf("verdict %q cannot be a map value", v.Kind)
	}
	e.nest(unix.NFTA_SET_ELEM_DATA, func() {
		e.nest(unix.NFTA_DATA_VERDICT, func() {
			e.u32(unix.NFTA_VERDICT_CODE, code)
			if v.Kind == "goto" {
				e.str(unix.NFTA_VERDICT_CHAIN, v.Target)
			}
		})
	})
	return nil
}

// encodeElement writes one element of s. A single-field interval [lo, hi] is a start element at lo and an
// interval-end element at hi+1 (none when hi is the top of the key space: the start carries the "open"
// flag instead). Both depend only on the element itself, so deleting an interval never needs its
// neighbours: an end and a start at the same key (adjacent intervals) are distinct kernel elements.
// Concatenated intervals (service-set) carry key and key end in one element. A rule-map's element is its
// key (a mark) alone, no interval.
func encodeElement(e *enc, s *NamedSet, el *Element, withData bool) error {
	if s.Kind == "rule-map" {
		var err error
		e.nest(attrListElem, func() {
			e.nest(unix.NFTA_SET_ELEM_KEY, func() { e.attr(unix.NFTA_DATA_VALUE, el.Lo) })
			if withData {
				err = verdictData(e, el.Verdict)
			}
		})
		return err
	}
	if s.Kind == "service-set" {
		// Each field padded to 4 bytes (registers).
		key := func(a []byte, port uint16) []byte {
			k := make([]byte, 0, len(a)+8)
			k = append(k, a...)
			k = append(k, el.Proto, 0, 0, 0)
			return append(binary.BigEndian.AppendUint16(k, port), 0, 0)
		}
		e.nest(attrListElem, func() {
			e.nest(unix.NFTA_SET_ELEM_KEY, func() { e.attr(unix.NFTA_DATA_VALUE, key(el.Lo, el.PLo)) })
			e.nest(attrSetElemKeyEnd, func() { e.attr(unix.NFTA_DATA_VALUE, key(el.Hi, el.PHi)) })
		})
		return nil
	}
	open := true
	for _, b := range el.Hi {
		if b != 0xff {
			open = false
			break
		}
	}
	var err error
	e.nest(attrListElem, func() {
		e.nest(unix.NFTA_SET_ELEM_KEY, func() { e.attr(unix.NFTA_DATA_VALUE, el.Lo) })
		if withData && el.Verdict != nil {
			err = verdictData(e, el.Verdict)
		}
		if withData && el.Mark != nil {
			e.nest(unix.NFTA_SET_ELEM_DATA, func() { e.attr(unix.NFTA_DATA_VALUE, el.Mark) })
		}
		if open {
			e.attr(unix.NFTA_SET_ELEM_USERDATA, udataElemOpen)
		}
	})
	if err != nil || open {
		return err
	}
	// hi + 1, big-endian (hi is not the top, so no overflow).
	end := append(make([]byte, 0, len(el.Hi)), el.Hi...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			break
		}
	}
	e.nest(attrListElem, func() {
		e.u32(unix.NFTA_SET_ELEM_FLAGS, elemFlagIntervalEnd)
		e.nest(unix.NFTA_SET_ELEM_KEY, func() { e.attr(unix.NFTA_DATA_VALUE, end) })
	})
	return nil
}

// Registers as nft allocates them: 4-byte slots from NFT_REG32_00, named by the 16-byte register when aligned.
func reg(slot int) uint32 {
	if slot%4 == 0 {
		return uint32(unix.NFT_REG_1 + slot/4)
	}
	return uint32(unix.NFT_REG32_00 + slot)
}

func addrOffset(v int, field string) (uint32, uint32) {
	if v == 4 {
		if field == "saddr" {
			return 12, 4
		}
		return 16, 4
	}
	if field == "saddr" {
		return 8, 16
	}
	return 24, 16
}

func nfproto(v int) byte {
	if v == 4 {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

type ruleBuilder struct {
	bd    *builder
	exprs []expr.Any
	// The network protocol the rule already established (nft adds `meta nfproto` once).
	proto int
}

func (rb *ruleBuilder) add(es ...expr.Any) { rb.exprs = append(rb.exprs, es...) }

// dependency is nft's implicit `meta nfproto ipvX` before an ip/ip6 header field in an inet table.
func (rb *ruleBuilder) dependency(v int) {
	if rb.proto == v {
		return
	}
	rb.proto = v
	rb.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(v)}})
}

func (rb *ruleBuilder) addrLoad(v int, field string, slot int) {
	off, l := addrOffset(v, field)
	rb.add(&expr.Payload{DestRegister: reg(slot), Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l})
}

func slots(v int) int {
	if v == 4 {
		return 1
	}
	return 4
}

// anonymousProtoSet adds the constant set of `meta l4proto { tcp, udp, sctp }` (created before its rule, as nft does).
func (rb *ruleBuilder) anonymousProtoSet(protocols []string) (uint32, error) {
	bd := rb.bd
	bd.nextID++
	id := bd.nextID
	bd.b.add(msgNewSet, nlmFCreate, "add anonymous set", func(e *enc) {
		e.str(unix.NFTA_SET_TABLE, bd.table)
		e.str(unix.NFTA_SET_NAME, "__set%d")
		e.u32(unix.NFTA_SET_FLAGS, setFlagAnonymous|setFlagConstant)
		e.u32(unix.NFTA_SET_KEY_TYPE, typeProto)
		e.u32(unix.NFTA_SET_KEY_LEN, 1)
		e.u32(unix.NFTA_SET_ID, id)
		e.nest(unix.NFTA_SET_DESC, func() { e.u32(unix.NFTA_SET_DESC_SIZE, uint32(len(protocols))) })
		e.attr(unix.NFTA_SET_USERDATA, udataL4protoSet)
	})
	var perr error
	bd.b.add(msgNewSetElem, nlmFCreate, "add anonymous set elements", func(e *enc) {
		e.str(unix.NFTA_SET_ELEM_LIST_TABLE, bd.table)
		e.str(unix.NFTA_SET_ELEM_LIST_SET, "__set%d")
		e.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
		e.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS, func() {
			for _, p := range protocols {
				n, ok := protoNumbers[p]
				if !ok {
					perr = fmt.Errorf("unknown protocol %q", p)
				}
				e.nest(attrListElem, func() { e.nest(unix.NFTA_SET_ELEM_KEY, func() { e.attr(unix.NFTA_DATA_VALUE, []byte{n}) }) })
			}
		})
	})
	return id, perr
}

func (rb *ruleBuilder) match(m *Match) error {
	switch m.M {
	case "ct-state":
		var bits uint32
		for _, s := range m.States {
			switch s {
			case "invalid":
				bits |= 1
			case "established":
				bits |= 2
			case "related":
				bits |= 4
			case "new":
				bits |= 8
			case "untracked":
				bits |= 64
			default:
				return fmt.Errorf("unknown ct state %q", s)
			}
		}
		rb.add(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	case "ifname":
		key := expr.MetaKeyIIFNAME
		if m.Dir == "oif" {
			key = expr.MetaKeyOIFNAME
		}
		name := make([]byte, 16)
		copy(name, m.Name)
		rb.add(&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
	case "nfproto":
		rb.proto = m.V
		rb.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(m.V)}})
	case "addr":
		a, err := netip.ParseAddr(m.Addr)
		if err != nil || (a.Is4() != (m.V == 4)) {
			return fmt.Errorf("address %q is not an IPv%d address", m.Addr, m.V)
		}
		op := expr.CmpOpEq
		if m.Op == "!=" {
			op = expr.CmpOpNeq
		}
		rb.dependency(m.V)
		rb.addrLoad(m.V, m.Field, 0)
		rb.add(&expr.Cmp{Op: op, Register: 1, Data: a.AsSlice()})
	case "addr-set":
		rb.dependency(m.V)
		rb.addrLoad(m.V, m.Field, 0)
		rb.add(&expr.Lookup{SourceRegister: 1, SetName: m.Set, SetID: rb.bd.setIDs[m.Set]})
	case "l4proto":
		rb.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1})
		if len(m.Protocols) == 1 {
			p, ok := protoNumbers[m.Protocols[0]]
			if !ok {
				return fmt.Errorf("unknown protocol %q", m.Protocols[0])
			}
			rb.add(&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
		} else {
			id, err := rb.anonymousProtoSet(m.Protocols)
			if err != nil {
				return err
			}
			rb.add(&expr.Lookup{SourceRegister: 1, SetName: "__set%d", SetID: id})
		}
	case "service-lookup":
		// addr . meta l4proto . th dport against an interval (pipapo) set: nft converts l4proto with a
		// byteorder expression (a no-op for one byte, but part of what nft sends and lists).
		rb.dependency(m.V)
		rb.addrLoad(m.V, m.Field, 0)
		p := slots(m.V)
		rb.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(p)},
			&expr.Byteorder{SourceRegister: reg(p), DestRegister: reg(p), Op: expr.ByteorderHton, Len: 1, Size: 2},
			&expr.Payload{DestRegister: reg(p + 1), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: m.Set, SetID: rb.bd.setIDs[m.Set]})
	case "icmp":
		proto := byte(1)
		if m.V == 6 {
			proto = 58
		}
		rb.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
		// nft merges adjacent type and code matches into one two-byte load.
		switch {
		case m.Type != nil && m.Code != nil:
			rb.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(*m.Type), byte(*m.Code)}})
		case m.Type != nil:
			rb.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(*m.Type)}})
		case m.Code != nil:
			rb.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 1, Len: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(*m.Code)}})
		}
	default:
		return fmt.Errorf("unknown match %q", m.M)
	}
	return nil
}

func verdictExpr(v *Verdict) (expr.Any, error) {
	switch v.Kind {
	case "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case "goto":
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: v.Target}, nil
	case "reject-tcp":
		return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST, Code: 0}, nil
	case "reject-icmpx":
		return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}, nil
	}
	return nil, fmt.Errorf("unknown verdict %q", v.Kind)
}

// sanitize is render.ts quote(): the characters nft's quoting cannot carry become "_".
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '"' || c == '\\' {
			b[i] = '_'
		}
	}
	return string(b)
}

// addRule: statements in render.ts ruleText order: matches, update @set, ct mark set, vmap, log, counter, verdict.
func (bd *builder) addRule(chain string, index int, r *Rule) error {
	rb := &ruleBuilder{bd: bd}
	for i := range r.Match {
		if err := rb.match(&r.Match[i]); err != nil {
			return fmt.Errorf("chain %s rule %d: %w", chain, index, err)
		}
	}
	if f := r.RecordFlow; f != nil {
		rb.dependency(f.V)
		n := slots(f.V)
		rb.addrLoad(f.V, "saddr", 0)
		rb.addrLoad(f.V, "daddr", n)
		rb.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(2 * n)},
			&expr.Payload{DestRegister: reg(2*n + 1), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Dynset{SrcRegKey: 1, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE), SetName: f.Set, SetID: bd.setIDs[f.Set]})
	}
	if r.CtMark != nil {
		rb.add(&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, *r.CtMark)}, &expr.Ct{Register: 1, SourceRegister: true, Key: expr.CtKeyMARK})
	}
	if v := r.Vmap; v != nil {
		switch v.Key {
		case "dport":
			rb.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: v.Map, SetID: bd.setIDs[v.Map]})
		case "class":
			// `ct mark set ip saddr map @Map ct mark vmap @Rules`: the address's rule number (data into
			// register 1) becomes the connection's mark, which is read back as the rule map's key.
			rb.dependency(v.V)
			rb.addrLoad(v.V, v.Field, 0)
			rb.add(&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: v.Map, SetID: bd.setIDs[v.Map]},
				&expr.Ct{Register: 1, SourceRegister: true, Key: expr.CtKeyMARK},
				&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
				&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: v.Rules, SetID: bd.setIDs[v.Rules]})
		default:
			return fmt.Errorf("chain %s rule %d: unknown map key %q", chain, index, v.Key)
		}
	}
	if r.Log != nil {
		rb.add(&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(sanitize(*r.Log))})
	}
	if r.Counter {
		rb.add(&expr.Counter{})
	}
	if r.Verdict != nil {
		v, err := verdictExpr(r.Verdict)
		if err != nil {
			return fmt.Errorf("chain %s rule %d: %w", chain, index, err)
		}
		rb.add(v)
	}
	var list enc
	for _, x := range rb.exprs {
		b, err := expr.Marshal(familyInet, x)
		if err != nil {
			return fmt.Errorf("chain %s rule %d: %w", chain, index, err)
		}
		list.attr(attrListElem|nlaFNested, b)
	}
	what := fmt.Sprintf("add rule %d to chain %s", index, chain)
	bd.b.add(msgNewRule, nlmFCreate|nlmFAppend, what, func(e *enc) {
		e.str(unix.NFTA_RULE_TABLE, bd.table)
		e.str(unix.NFTA_RULE_CHAIN, chain)
		e.attr(unix.NFTA_RULE_EXPRESSIONS|nlaFNested, list.b)
		if r.Comment != nil {
			// libnftnl user data: NFTNL_UDATA_RULE_COMMENT (0), length, the string with its NUL.
			c := append([]byte(sanitize(*r.Comment)), 0)
			if len(c) > 255 {
				c = append(c[:254], 0)
			}
			e.attr(unix.NFTA_RULE_USERDATA, append([]byte{0, byte(len(c))}, c...))
		}
	})
	return nil
}

// elementsBatch: per set, delete then add; all deletions first (an interval moving to another rule
// must not overlap itself meanwhile).
func elementsBatch(table string, changes []SetChange) (*batch, error) {
	bd := &builder{b: &batch{}, table: table}
	for _, del := range []bool{true, false} {
		for i := range changes {
			c := &changes[i]
			str, typ := c.Add, uint16(msgNewSetElem)
			if del {
				str, typ = c.Delete, msgDelSetElem
			}
			elems, err := parseElements(c.Set.Kind, c.Set.V, str)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", c.Set.Name, err)
			}
			if len(elems) > 0 {
				if err := bd.elements(typ, &c.Set, elems, 0, !del); err != nil {
					return nil, err
				}
			}
		}
	}
	return bd.b, nil
}
