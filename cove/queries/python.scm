; Definitions, references and imports in Python (tags-style captures: @definition.KIND with @name).
(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class
(module (expression_statement (assignment left: (identifier) @name)) @definition.constant)
(call function: [(identifier) @name (attribute attribute: (identifier) @name)]) @reference.call
[(import_statement) (import_from_statement)] @import
