import { ADMIN_STATE_CHOICES, ENVIRONMENT_CHOICES, HEALTH_STATUS_CHOICES, MODEL_STATUS_CHOICES } from './choices.util';

// The CLI restates these lists to start fast; this keeps them the contracts' words. The contracts
// are imported the way the CLI imports them at run time: lazily (watch), so never statically here.
describe('admin-cli choices', () => {
  it.each([
    ['environments', ENVIRONMENT_CHOICES, 'ENVIRONMENTS'],
    ['model statuses', MODEL_STATUS_CHOICES, 'MODEL_STATUSES'],
    ['health statuses', HEALTH_STATUS_CHOICES, 'HEALTH_STATUSES'],
    ['admin states', ADMIN_STATE_CHOICES, 'ADMIN_STATES'],
  ] as const)('offers exactly the contracts %s', async (_name, choices, name) => {
    const contracts = await import('@switchboard/contracts');
    expect([...choices].sort()).toEqual([...contracts[name]].sort());
  });
});
