#!/usr/bin/env python3
# Per-wave numbers from a run's raw files (bench/results/raw/<stamp>/n<N>/b<B>.log and .events.jsonl) when
# the run's JSON was not written (e.g. the bench was stopped during teardown).
#   python3 bench/reanalyze-raw.py bench/results/raw/<stamp>/n<N>   (expects b500.log / b500.events.jsonl)
import json,re,sys,statistics as st
from datetime import datetime
L=sys.argv[1]
ev=[json.loads(l) for l in open(L+'/b500.events.jsonl') if l.strip()]
def ts(s): return datetime.fromisoformat(s.replace('Z','+00:00')).timestamp()*1000
waves={}; 
for line in open(L+'/b500.log'):
  parts=line.rstrip('\n').split(' ',2)
  if len(parts)<3 or parts[1]!='err': continue
  m=re.match(r'^(\S+Z) (.*)$',parts[2])
  if not m: continue
  t=ts(m.group(1)); text=m.group(2)
  w=re.match(r'^wave (\d+)/\d+: (.*)$',text)
  if w: waves[int(w.group(1))]={'start':t,'n':len(w.group(2).split(', ')),'phases':[]}; continue
  w=re.match(r'^wave (\d+) done: (.*)$',text)
  if w: waves[int(w.group(1))]['end']=t; waves[int(w.group(1))]['done']=w.group(2)[:60]; continue
  w=re.match(r'^wave (\d+) (prepare|cordon|upgrade|verify|complete|rollback): ',text)
  if w: waves[int(w.group(1))]['phases'].append((w.group(2),t))
lcm=[e for e in ev if e['ua'].startswith('kata-lcm/')]
kw=[e for e in ev if e['ua'].startswith('kwok') and e['resource']=='pods' and e['subresource']=='status']
for k,w in sorted(waves.items()):
  if 'end' not in w: continue
  inw=lambda e: w['start']<=e['t']<=w['end']
  ph={}
  for i,(p,t) in enumerate(w['phases']):
    nxt=w['phases'][i+1][1] if i+1<len(w['phases']) else w['end']; ph[p]=round((nxt-t)/1000,1)
  dels=[e['t'] for e in lcm if inw(e) and e['verb']=='delete' and e['resource']=='pods' and not e['name'].startswith('kata-verify-')]
  ready=[e['end'] for e in kw if inw(e) and not e['name'].startswith('kata-verify-')]
  cre=[e['t'] for e in lcm if inw(e) and e['verb']=='create' and e['resource']=='pods' and e['subresource']=='']
  vfin=[e['end'] for e in kw if inw(e) and e['name'].startswith('kata-verify-')]
  ds=(max(ready)-min(dels))/1000 if dels and ready else None
  vp=(max(vfin)-min(cre))/1000 if cre and vfin else None
  dur=(w['end']-w['start'])/1000
  print(k, w['n'], round(dur,1), ph, 'ds', ds and round(ds,1), 'vp', vp and round(vp,1), 'ovh', round(dur-(ds or 0)-(vp or 0),1), w.get('done'))
  lw=[e for e in lcm if inw(e)]
  print('   kata-lcm requests in wave', len(lw), 'per node', round(len(lw)/w['n'],2))
  pl=[e['end']-e['t'] for e in lw if e['resource']=='nodes' and e['verb']=='patch']
  if pl: print('   node patch latency median/p95 ms', round(st.median(pl)), round(sorted(pl)[int(.95*len(pl))]))
