"""Starting the parts: the embedded broker and database, topics, migrations, processes."""
