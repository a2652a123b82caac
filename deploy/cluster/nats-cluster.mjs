#!/usr/bin/env node
// A 3-node NATS JetStream cluster on loopback, for trying Switchboard out of one machine and for the
// cluster e2e tests: each node its own client, route and monitoring port and its own store directory,
// every node routing to the other two.
//
//   node deploy/cluster/nats-cluster.mjs                 start it in the foreground (Ctrl-C stops it)
//   node deploy/cluster/nats-cluster.mjs --config-only   write the node configs, print them as JSON, exit
//   options: --dir DIR (default ./tmp/nats-cluster)  --port P (client ports P, P+1, P+2; default 4301)
//            --nodes N (default 3)
//
// Then point every app at all of them: NATS_URL=nats://127.0.0.1:4301,nats://127.0.0.1:4302,nats://127.0.0.1:4303
// and EVENT_STREAM_REPLICAS=3. The tests write the configs with --config-only and start, kill and
// restart each node themselves.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROUTE_OFFSET = 1000; // route ports: P+1000…
const MONITOR_OFFSET = 2000; // monitoring ports: P+2000…

/** The node configs of a cluster: pure, so a test can write and start them itself. */
export function clusterNodes({ dir, port = 4301, nodes = 3, name = 'switchboard' }) {
  const list = Array.from({ length: nodes }, (_, i) => ({
    name: `${name}-n${i + 1}`,
    port: port + i,
    routePort: port + ROUTE_OFFSET + i,
    monitorPort: port + MONITOR_OFFSET + i,
    storeDir: resolve(dir, `n${i + 1}`),
    configFile: resolve(dir, `n${i + 1}.conf`),
  }));
  return list.map((node) => ({
    ...node,
    config: [
      `server_name: ${node.name}`,
      `listen: 127.0.0.1:${node.port}`,
      `http: 127.0.0.1:${node.monitorPort}`,
      // 1 MiB, as deploy/nats/nats-server.conf: registry-api's snapshot chunks fill max_payload.
      'max_payload: 1MB',
      `jetstream { store_dir: "${node.storeDir}" }`,
      'cluster {',
      `  name: ${name}`,
      `  listen: 127.0.0.1:${node.routePort}`,
      `  routes: [${list.filter((other) => other !== node).map((other) => `nats-route://127.0.0.1:${other.routePort}`).join(', ')}]`,
      '}',
      '',
    ].join('\n'),
  }));
}

export function natsUrlOf(nodes) {
  return nodes.map((node) => `nats://127.0.0.1:${node.port}`).join(',');
}

export function writeCluster(options) {
  const nodes = clusterNodes(options);
  for (const node of nodes) {
    mkdirSync(node.storeDir, { recursive: true });
    writeFileSync(node.configFile, node.config);
  }
  return nodes;
}

async function main() {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: 'tmp/nats-cluster' },
      port: { type: 'string', default: '4301' },
      nodes: { type: 'string', default: '3' },
      'config-only': { type: 'boolean', default: false },
    },
  });
  const port = Number.parseInt(values.port, 10);
  const count = Number.parseInt(values.nodes, 10);
  if (!(port > 0 && port + MONITOR_OFFSET + count < 65536) || !(count >= 1 && count <= 9)) {
    console.error('--port must leave room for P+2000+nodes below 65536, and --nodes must be 1–9');
    process.exit(2);
  }
  const nodes = writeCluster({ dir: resolve(values.dir), port, nodes: count });
  if (values['config-only']) {
    console.log(JSON.stringify({ natsUrl: natsUrlOf(nodes), nodes: nodes.map(({ config, ...rest }) => rest) }, null, 2));
    return;
  }
  if (spawnSync('nats-server', ['--version']).error) {
    console.error('nats-server is not on PATH (Debian: apt-get install nats-server; or the release binary from github.com/nats-io/nats-server)');
    process.exit(1);
  }
  const children = nodes.map((node) => {
    const child = spawn('nats-server', ['-c', node.configFile], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => {
      if (!stopping) console.error(`${node.name} exited (${signal ?? code})`);
    });
    return child;
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(`NATS cluster of ${nodes.length}: NATS_URL=${natsUrlOf(nodes)}`);
  console.log(`monitoring: ${nodes.map((node) => `http://127.0.0.1:${node.monitorPort}/jsz`).join(' ')}`);
  await Promise.all(children.map((child) => new Promise((done) => child.on('exit', done))));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('nats-cluster.mjs')) {
  await main();
}
