// Run once by the server's script engine at start: binds the traversal source "g" of the
// graph "graph" (janusgraph-server.yaml), the name drivers send bytecode to and scripts use.
def globals = [:]
globals << [g : graph.traversal()]
