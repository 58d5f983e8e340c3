; Definitions, references and imports in JavaScript and JSX.
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (identifier) @name) @definition.class
(method_definition name: (property_identifier) @name) @definition.method
(lexical_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function
([(program (lexical_declaration
  (variable_declarator name: (identifier) @name value: [(string) (number) (object) (array) (template_string)])) @definition.constant)
  (program (export_statement (lexical_declaration
  (variable_declarator name: (identifier) @name value: [(string) (number) (object) (array) (template_string)])) @definition.constant))])
(call_expression function: [(identifier) @name (member_expression property: (property_identifier) @name)]) @reference.call
(new_expression constructor: (identifier) @name) @reference.class
(import_statement) @import
