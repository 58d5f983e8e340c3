; Definitions, references and includes in C++.
(function_definition declarator: [
  (function_declarator declarator: [(identifier) @name (field_identifier) @name (qualified_identifier name: (_) @name) (destructor_name) @name (operator_name) @name])
  (pointer_declarator declarator: (function_declarator declarator: [(identifier) @name (qualified_identifier name: (_) @name)]))
  (reference_declarator (function_declarator declarator: [(identifier) @name (qualified_identifier name: (_) @name)]))]) @definition.function
(declaration declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(struct_specifier name: (type_identifier) @name body: (_)) @definition.class
(union_specifier name: (type_identifier) @name body: (_)) @definition.class
(enum_specifier name: (type_identifier) @name body: (_)) @definition.type
(type_definition declarator: (type_identifier) @name) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
(namespace_definition name: (namespace_identifier) @name) @definition.module
(preproc_def name: (identifier) @name) @definition.constant
(call_expression function: [(identifier) @name (field_expression field: (field_identifier) @name) (qualified_identifier name: (identifier) @name)]) @reference.call
(preproc_include) @import
