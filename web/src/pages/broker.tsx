// Broker: topics with partitions and sizes, a topic's partitions and groups
// with lag, and a test record for operators.
import { useState } from 'preact/hooks';
import { BROKER, roleAtLeast } from '../api';
import { ErrorNote, Loading, useLoad } from '../components/ui';
import { enumLabel, humanBytes } from '../format';
import { useConsole } from '../state';

interface TopicSummary {
  topic: string;
  partitions?: number;
  bytes?: string;
  records?: string;
}

export function BrokerPage() {
  const { api } = useConsole();
  const topics = useLoad((signal) => api.call<{ topics?: TopicSummary[] }>(BROKER, 'ListTopics', {}, signal), []);
  const groups = useLoad((signal) => api.call<{ groups?: any[] }>(BROKER, 'ListGroups', {}, signal), []);
  const [selected, setSelected] = useState<string | null>(null);
  const lagOf = (topic: string) =>
    (groups.data?.groups ?? []).filter((g) => g.topic === topic).reduce((sum, g) => sum + Number(g.lag ?? 0), 0);
  return (
    <section>
      <h1>Broker</h1>
      <ErrorNote error={topics.error} />
      {topics.loading && !topics.data && <Loading what="topics" />}
      {topics.data && (topics.data.topics ?? []).length === 0 && <p class="empty">No topics yet.</p>}
      {topics.data && (topics.data.topics ?? []).length > 0 && (
        <div class="scroll">
          <table data-testid="topics">
            <thead>
              <tr>
                <th>Topic</th>
                <th>Partitions</th>
                <th>Records</th>
                <th>Size</th>
                <th>Group lag</th>
              </tr>
            </thead>
            <tbody>
              {(topics.data.topics ?? []).map((t) => (
                <tr key={t.topic} class={selected === t.topic ? 'selected' : ''}>
                  <td>
                    <button class="link" onClick={() => setSelected(t.topic)} aria-pressed={selected === t.topic}>
                      {t.topic}
                    </button>
                  </td>
                  <td>{t.partitions}</td>
                  <td>{t.records ?? 0}</td>
                  <td>{humanBytes(t.bytes)}</td>
                  <td>{lagOf(t.topic)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected && <TopicDetail topic={selected} />}
      <ProduceForm
        topics={(topics.data?.topics ?? []).map((t) => t.topic)}
        onProduced={() => {
          topics.reload();
          groups.reload();
        }}
      />
    </section>
  );
}

function TopicDetail(props: { topic: string }) {
  const { api } = useConsole();
  const d = useLoad((signal) => api.call<any>(BROKER, 'DescribeTopic', { topic: props.topic }, signal), [props.topic]);
  return (
    <div class="card" data-testid="topic-detail">
      <h2>{props.topic}</h2>
      <ErrorNote error={d.error} />
      {d.loading && !d.data && <Loading what="topic" />}
      {d.data && (
        <>
          <h3>Partitions</h3>
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th>Partition</th>
                  <th>Start offset</th>
                  <th>End offset</th>
                  <th>Size</th>
                  <th>Segments</th>
                </tr>
              </thead>
              <tbody>
                {(d.data.partitions ?? []).map((p: any) => (
                  <tr key={p.partition ?? 0}>
                    <td>{p.partition ?? 0}</td>
                    <td>{p.startOffset ?? 0}</td>
                    <td>{p.endOffset ?? 0}</td>
                    <td>{humanBytes(p.bytes)}</td>
                    <td>{p.segments ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h3>Groups</h3>
          {(d.data.groups ?? []).length === 0 ? (
            <p class="empty">No consumer groups.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Group</th>
                  <th>Mode</th>
                  <th>Members</th>
                  <th>Lag</th>
                  <th>In flight</th>
                  <th>Dead-lettered</th>
                </tr>
              </thead>
              <tbody>
                {(d.data.groups ?? []).map((g: any) => (
                  <tr key={g.group}>
                    <td>{g.group}</td>
                    <td>{enumLabel(g.mode, 'GROUP_MODE_')}</td>
                    <td>{(g.members ?? []).length}</td>
                    <td>{g.lag ?? 0}</td>
                    <td>{g.inFlight ?? 0}</td>
                    <td>{g.deadLettered ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}

function ProduceForm(props: { topics: string[]; onProduced: () => void }) {
  const { api, session } = useConsole();
  const [topic, setTopic] = useState('');
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [outcome, setOutcome] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  if (!roleAtLeast(session.role, 'ROLE_OPERATOR')) return null;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setOutcome(null);
    try {
      const r = await api.call<any>(BROKER, 'Produce', { topic, value, key });
      const a = (r.appends ?? [])[0] ?? {};
      setOutcome(`Written to ${topic} partition ${a.partition ?? 0} at offset ${a.baseOffset ?? a.firstOffset ?? 0}`);
      props.onProduced();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={submit} data-testid="produce">
      <h2>Produce a test record</h2>
      <div class="row">
        <label>
          Topic
          <input name="topic" list="topic-names" required value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
          <datalist id="topic-names">
            {props.topics.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </label>
        <label>
          Key
          <input name="key" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </label>
        <label class="grow">
          Value
          <input name="value" required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
      </div>
      <ErrorNote error={error} />
      {outcome && (
        <p class="ok" role="status">
          {outcome}
        </p>
      )}
      <button type="submit">Produce</button>
    </form>
  );
}
