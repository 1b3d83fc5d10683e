// Read queries of kerec.kg's Bolt backend, one named query per block. All values are parameters.
// Nodes are looked up with `UNWIND $ids AS k MATCH (n:Label {id: k})` (an index seek on every server)
// rather than `WHERE n.id IN $ids`, which ArcadeDB answers with a scan.

// name: meta
MATCH (m:Meta {key: 'dataset'}) RETURN m.name AS name, m.fingerprint AS fingerprint, m.complete AS complete;

// name: existing_User
UNWIND $ids AS k MATCH (n:User {id: k}) RETURN collect(k) AS found;

// name: existing_Item
UNWIND $ids AS k MATCH (n:Item {id: k}) RETURN collect(k) AS found;

// name: existing_Entity
UNWIND $ids AS k MATCH (n:Entity {id: k}) RETURN collect(k) AS found;

// name: incident_Item
UNWIND $ids AS k MATCH (n:Item {id: k})-[f:FACT]-() RETURN k, collect(f.row) AS rows;

// name: incident_Entity
UNWIND $ids AS k MATCH (n:Entity {id: k})-[f:FACT]-() RETURN k, collect(f.row) AS rows;

// name: incident_User
UNWIND $ids AS k MATCH (n:User {id: k})-[f:FACT]-() RETURN k, collect(f.row) AS rows;

// name: facts_by_id
// `WHERE f.fid IN $fids` is the form ArcadeDB answers from the relationship index (UNWIND + match scans).
MATCH ()-[f:FACT]->() WHERE f.fid IN $fids RETURN collect(f.row) AS rows;

// name: history
MATCH (u:User {id: $user})-[r:INTERACTED]->(i:Item)
RETURN collect([i.id, r.timestamp, r.rating]) AS rows;

// name: names_Item
UNWIND $ids AS k MATCH (n:Item {id: k}) RETURN collect([k, n.title]) AS rows;

// name: names_Entity
UNWIND $ids AS k MATCH (n:Entity {id: k}) RETURN collect([k, n.name]) AS rows;

// name: count_User
MATCH (n:User) RETURN count(n) AS n;

// name: count_Item
MATCH (n:Item) RETURN count(n) AS n;

// name: count_Entity
MATCH (n:Entity) RETURN count(n) AS n;

// name: count_interactions
MATCH (:User)-[r:INTERACTED]->(:Item) RETURN count(r) AS n;

// name: count_relations
MATCH ()-[f:FACT]->() RETURN f.rel AS rel, count(f) AS n;

// name: node_index_User
MATCH (n:User) RETURN collect([n.id, n.idx]) AS rows;

// name: node_index_Item
MATCH (n:Item) RETURN collect([n.id, n.idx]) AS rows;

// name: node_index_Entity
MATCH (n:Entity) RETURN collect([n.id, n.idx]) AS rows;

// name: all_facts
MATCH ()-[f:FACT]->() RETURN collect(f.row) AS rows;
