// Parse DMN files with dmn-moddle, the model layer of dmn-js (the modeler in Camunda Modeler).
// Prints one line per file: "<file>: <n> warning(s), ..." or "<file>: ERROR <message>".
import * as mod from 'dmn-moddle';
const DmnModdle = mod.default ?? mod.DmnModdle ?? Object.values(mod)[0];
import { readFileSync } from 'fs';
const moddle = new DmnModdle();
for (const file of process.argv.slice(2)) {
  const xml = readFileSync(file, 'utf8');
  try {
    const { rootElement, warnings } = await moddle.fromXML(xml, 'dmn:Definitions');
    const decisions = rootElement.drgElement.filter(e => e.$type === 'dmn:Decision');
    const rules = decisions.map(d => d.decisionLogic?.rule?.length ?? 0);
    console.log(`${file}: ${warnings.length} warning(s), ${decisions.length} decision(s), rules ${rules}`);
    for (const w of warnings) console.log('  WARN', w.message);
  } catch (e) { console.log(`${file}: ERROR ${e.message}`); }
}
