import { formatIp, parseIp, type Cidr, type Ip } from './ip';

/**
 * Hands out addresses from a CIDR or range, lowest free first. Network and broadcast addresses of IPv4
 * CIDRs wider than /31 are skipped because they are not usable host addresses. Exhaustion returns
 * undefined: the caller turns it into a validation problem, never an exception.
 */
export class AddressPool {
  private readonly used = new Set<bigint>();
  private cursor: bigint;
  private readonly lo: bigint;
  private readonly hi: bigint;

  constructor(readonly range: Cidr, skipEdges = true) {
    let lo = BigInt(range.lo);
    let hi = BigInt(range.hi);
    if (skipEdges && range.v === 4 && hi - lo >= 3n) {
      lo += 1n;
      hi -= 1n;
    } else if (skipEdges && range.v === 6 && hi - lo >= 2n) lo += 1n;
    this.lo = lo;
    this.hi = hi;
    this.cursor = lo;
  }

  get capacity(): bigint {
    return this.hi - this.lo + 1n;
  }

  /** Marks an address as taken (e.g. kept from a previous allocation); false when outside or already used. */
  reserve(ip: Ip): boolean {
    const n = BigInt(ip.n);
    if (n < this.lo || n > this.hi || this.used.has(n)) return false;
    this.used.add(n);
    return true;
  }

  release(ip: Ip): void {
    const n = BigInt(ip.n);
    this.used.delete(n);
    if (n < this.cursor) this.cursor = n;
  }

  allocate(): Ip | undefined {
    if (BigInt(this.used.size) >= this.capacity) return undefined;
    for (let n = this.cursor; n <= this.hi; n++) {
      if (!this.used.has(n)) {
        this.used.add(n);
        this.cursor = n + 1n;
        return parseIp(formatIp(this.range.v, this.range.v === 4 ? Number(n) : n));
      }
    }
    return undefined;
  }
}
