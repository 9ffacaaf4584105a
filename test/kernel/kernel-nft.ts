import { findNftWriter, NetlinkNft, NftCli, type NftExecutor } from '../../provider/src/agent';

/**
 * The executor the kernel suites program namespaces with: the agent's default, microseg-nft over netlink
 * (scripts/setup.sh builds it into .tools/bin); `MICROSEG_TEST_NFT=nft` runs the same suites through the
 * nft command line instead (the agent's fallback).
 */
export function writerBinary(): string {
  const binary = findNftWriter({});
  if (!binary) throw new Error('microseg-nft is missing: run scripts/setup.sh (it builds tools/nft-writer into .tools/bin)');
  return binary;
}

export function kernelNft(ns: string): NftExecutor {
  if (process.env.MICROSEG_TEST_NFT === 'nft') return new NftCli({ command: ['ip', 'netns', 'exec', ns, 'nft'] });
  return new NetlinkNft({ binary: writerBinary(), prefix: ['ip', 'netns', 'exec', ns] });
}
