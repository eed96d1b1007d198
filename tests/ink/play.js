// Compile an .ink file with inkjs and play it to its end, always taking the first choice.
// Usage: node play.js story.ink  -> prints JSON {errors, warnings, lines, choices, ended} on stdout.
"use strict";
const fs = require("fs");
const { Compiler, CompilerOptions } = require("inkjs/full");

const source = fs.readFileSync(process.argv[2], "utf-8");
const errors = [];
const warnings = [];
const onIssue = (message, type) => (type === 1 ? warnings : errors).push(message); // ErrorType.Warning === 1
const options = new CompilerOptions(null, [], false, onIssue);
let story = null;
try {
  story = new Compiler(source, options).Compile();
} catch (error) {
  if (!errors.length) errors.push(String(error));
}
const lines = [];
let choices = 0;
let ended = false;
if (story) {
  story.onError = (message, type) => (type === 1 ? warnings : errors).push(message);
  for (let guard = 0; guard < 100000; guard++) {
    while (story.canContinue) {
      const text = story.Continue();
      lines.push({ text: text.replace(/\n$/, ""), tags: story.currentTags.slice() });
    }
    if (story.currentChoices.length === 0) {
      ended = true;
      break;
    }
    choices += 1;
    story.ChooseChoiceIndex(0);
  }
}
process.stdout.write(JSON.stringify({ errors, warnings, lines, choices, ended, globalTags: story ? story.globalTags : [] }));
