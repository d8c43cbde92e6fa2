import test from 'ava';
import { currentValuesSchema, renderValuesSchema } from './values-schema.ts';

test('the chart\'s values.schema.json matches the chart\'s and the hub\'s schemas', (t) => {
  t.is(currentValuesSchema(), renderValuesSchema(), 'run `node k8s/chart/values-schema.ts --write` to refresh it');
});

test('values.schema.json carries the hub\'s configuration schema under hub.config', (t) => {
  const schema = JSON.parse(currentValuesSchema()) as { properties: { hub: { properties: { config: { properties: Record<string, { properties?: Record<string, unknown> }> } } } } };
  const config = schema.properties.hub.properties.config.properties;
  t.deepEqual(Object.keys(config), ['hub', 'proxy', 'auth', 'spawn', 'local', 'kubernetes', 'culler']);
  t.truthy(config.spawn?.properties?.maxWorkers, 'spawn.maxWorkers is described');
});
