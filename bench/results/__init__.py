"""Results: case records, run folders, blessed artefacts and their rendering."""
