"""The project's own files: the README and docs as text, packaging, the plugin definition, the
package's layers, and the test tools in scripts/ and tests/support/."""
