; Definitions, references and requires in Ruby.
(method name: (_) @name) @definition.method
(singleton_method name: (_) @name) @definition.method
(class name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.class
(module name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.module
(program (assignment left: (constant) @name) @definition.constant)
(call method: (identifier) @name) @reference.call
((call method: (identifier) @_require) @import (#match? @_require "^require(_relative)?$"))
