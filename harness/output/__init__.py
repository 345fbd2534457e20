"""Result files for people and CI: session summaries, JUnit, Markdown and HTML reports, baselines, bundles."""
