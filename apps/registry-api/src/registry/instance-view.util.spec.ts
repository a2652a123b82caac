import { internalUrlOf } from './instance-view.util';
import { modelServiceName } from '../models/model-fields.util';

describe('instance views', () => {
  it('generates internalUrl as http://{vmIp}:{internalPort}, bracketing IPv6', () => {
    expect(internalUrlOf('174.138.68.108', 3008)).toBe('http://174.138.68.108:3008');
    expect(internalUrlOf('fd00::5', 8000)).toBe('http://[fd00::5]:8000');
    expect(internalUrlOf('vllm.ns.svc.cluster.local', 8000)).toBe('http://vllm.ns.svc.cluster.local:8000');
  });

  it('turns any model name into a subject-safe service name', () => {
    expect(modelServiceName('meta-llama/Llama-3-8B')).toBe('meta-llama-Llama-3-8B');
    expect(modelServiceName('qwen2.5:7b')).toBe('qwen2-5-7b');
  });
});
