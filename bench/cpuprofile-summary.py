#!/usr/bin/env python3
# Summarizes a V8 .cpuprofile (node --cpu-prof): self time by module and by function.
#   python3 bench/cpuprofile-summary.py FILE.cpuprofile
import json,sys,collections
p=json.load(open(sys.argv[1]))
nodes={n['id']:n for n in p['nodes']}
self_t=collections.Counter()
samples=p['samples']; deltas=p['timeDeltas']
for s,d in zip(samples,deltas): self_t[s]+=d
tot=sum(deltas)
# aggregate by function+url
agg=collections.Counter(); byurl=collections.Counter()
for nid,t in self_t.items():
  cf=nodes[nid]['callFrame']; key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('node_modules/')[-1][:70]}:{cf['lineNumber']}"
  agg[key]+=t
  u=cf['url']
  if 'node_modules/' in u: u=u.split('node_modules/')[-1].split('/')[0] + ('/'+u.split('node_modules/')[-1].split('/')[1] if u.split('node_modules/')[-1].startswith('@') else '')
  elif u.startswith('node:'): u=u
  elif u=='' : u='(native/gc/idle:'+cf['functionName']+')'
  else: u='kata-lcm '+u.split('/')[-1]
  byurl[u]+=t
print('total ms',tot/1000)
for k,v in byurl.most_common(25): print(f"{v/1000:8.0f} ms {100*v/tot:5.1f}%  {k}")
print()
for k,v in agg.most_common(30): print(f"{v/1000:8.0f} ms {100*v/tot:5.1f}%  {k}")
