#!/usr/bin/env bash
# Refreshes the screenshots in docs/console/ from the console's browser test
# (which writes them under target/console-screenshots/; CI never changes
# tracked files, people run this and commit the result).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test console the_console_in_headless_chromium -- --nocapture
mkdir -p docs/console
cp target/console-screenshots/*.png docs/console/
ls -l docs/console/
