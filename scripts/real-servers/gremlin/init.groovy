// Run once by Gremlin Server's script engine at start (ScriptFileGremlinPlugin): binds the
// traversal source "g" of the graph "graph" (gremlin-server.yaml), the name drivers send
// bytecode to and scripts use.
def globals = [:]
globals << [g : traversal().withEmbedded(graph)]
