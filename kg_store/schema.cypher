// Constraints and indexes of the kerec collaborative KG. Neo4j 5 syntax, also accepted by ArcadeDB.
// Statements are separated by semicolons; kerec.kg applies them before every load (all are idempotent).
CREATE CONSTRAINT kerec_user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT kerec_item_id IF NOT EXISTS FOR (n:Item) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT kerec_entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT kerec_meta_key IF NOT EXISTS FOR (n:Meta) REQUIRE n.key IS UNIQUE;
CREATE INDEX kerec_fact_fid IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.fid);
