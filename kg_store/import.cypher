// Bulk import of the collaborative KG, one named query per block ("// name: …").
// Every value arrives as a parameter; $rows is one batch of maps. Labels are fixed in the text
// because Cypher cannot parameterise them: one query per (head label, tail label) pair of FACT.
// FACT carries `fid` and `rel` for lookups and `row` = "fid<TAB>head key<TAB>relation<TAB>tail key" for
// reads: ArcadeDB's Bolt layer costs ~20 µs per property read, so a fact comes back as one string.

// name: meta_begin
MERGE (m:Meta {key: 'dataset'})
SET m.name = $name, m.fingerprint = $fingerprint, m.complete = false;

// name: meta_complete
MATCH (m:Meta {key: 'dataset'}) SET m.complete = true;

// name: users
UNWIND $rows AS r CREATE (:User {id: r.id, idx: r.idx});

// name: items
UNWIND $rows AS r CREATE (:Item {id: r.id, idx: r.idx, title: r.name, entity: r.entity});

// name: entities
UNWIND $rows AS r CREATE (:Entity {id: r.id, idx: r.idx, name: r.name, kind: r.kind});

// name: interactions
UNWIND $rows AS r
MATCH (u:User {id: r.user}) MATCH (i:Item {id: r.item})
CREATE (u)-[:INTERACTED {rating: r.rating, timestamp: r.timestamp}]->(i);

// name: facts_Item_Item
UNWIND $rows AS r MATCH (a:Item {id: r.head}) MATCH (b:Item {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: facts_Item_Entity
UNWIND $rows AS r MATCH (a:Item {id: r.head}) MATCH (b:Entity {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: facts_Entity_Item
UNWIND $rows AS r MATCH (a:Entity {id: r.head}) MATCH (b:Item {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: facts_Entity_Entity
UNWIND $rows AS r MATCH (a:Entity {id: r.head}) MATCH (b:Entity {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: facts_User_Entity
UNWIND $rows AS r MATCH (a:User {id: r.head}) MATCH (b:Entity {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: facts_User_User
UNWIND $rows AS r MATCH (a:User {id: r.head}) MATCH (b:User {id: r.tail})
CREATE (a)-[:FACT {fid: r.fid, rel: r.rel, row: r.row}]->(b);

// name: clear_batch
MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted;
