#!/usr/bin/env python3
"""check_file_tables.py ROOT — the file tables are how a newcomer finds the
file for a concept, so they must match the tree:

- every source file of a component (.c .h .cpp .js .mjs under protocol/,
  compiler/, relay/, runtime/, web/, client/, cli/, nrepl/) is named, in
  backquotes, in docs/ARCHITECTURE.md or in a README.md of its folder;
- every folder of tests/ is named in docs/ARCHITECTURE.md § Tests;
- every file named in the first column of a table (in ARCHITECTURE.md's
  component sections and in the components' READMEs) exists, unless the
  row says it is generated.

Prints each mismatch and exits 1 if there is one."""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else '.'
COMPONENTS = ['protocol', 'compiler', 'relay', 'runtime', 'web', 'client',
              'cli', 'nrepl']
SOURCE = ('.c', '.h', '.cpp', '.js', '.mjs')
SKIP_DIRS = {'node_modules', 'vendor'}


def read(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as f:
        return f.read()


def walk(folder):
    for dirpath, dirs, files in os.walk(os.path.join(ROOT, folder)):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        yield os.path.relpath(dirpath, ROOT), files


def named(text):
    return set(re.findall(r'`([^`\s]+)`', text))


def table_rows(text):
    """(section, names in the first cell) of each table row."""
    section = None
    for line in text.splitlines():
        if line.startswith('## '):
            section = line[3:].strip()
        elif line.startswith('| `'):
            cell = line.split('|')[1]
            if 'generated' not in cell:
                yield section, re.findall(r'`([^`\s]+)`', cell)


problems = []
arch_text = read('docs/ARCHITECTURE.md')
arch = named(arch_text)

for comp in COMPONENTS:
    readmes = set()
    for dirpath, files in walk(comp):
        if 'README.md' in files:
            readme = os.path.join(dirpath, 'README.md')
            text = read(readme)
            readmes |= named(text)
            for _, names in table_rows(text):
                for n in names:
                    if n.endswith(SOURCE) and not any(
                            os.path.exists(os.path.join(ROOT, d, n))
                            for d in (dirpath, comp, '.')):
                        problems.append(f'{readme}: names {n}, which is not '
                                        'there')
    for dirpath, files in walk(comp):
        for f in sorted(files):
            if not f.endswith(SOURCE):
                continue
            full = os.path.join(dirpath, f)
            forms = {f, full, os.path.relpath(full, comp)}
            if not forms & (arch | readmes):
                problems.append(f'{full}: not named in docs/ARCHITECTURE.md '
                                f'nor in a README.md of {comp}/')

for section, names in table_rows(arch_text):
    folders = [c for c in COMPONENTS
               if section and re.search(rf'(^| ){c}/', section)]
    for n in names if folders else []:
        if not any(os.path.exists(os.path.join(ROOT, d, n))
                   for d in folders + ['.']):
            problems.append(f'docs/ARCHITECTURE.md § {section}: names {n}, '
                            'which is not there')

tests_section = arch_text.split('\n## Tests', 1)[-1]
for entry in sorted(os.listdir(os.path.join(ROOT, 'tests'))):
    folder = f'tests/{entry}/'
    if os.path.isdir(os.path.join(ROOT, folder)) and \
            f'`{folder}`' not in tests_section:
        problems.append(f'{folder}: not in docs/ARCHITECTURE.md § Tests')

for p in problems:
    print(p)
print(f'{len(problems)} mismatches between the file tables and the tree')
sys.exit(1 if problems else 0)
