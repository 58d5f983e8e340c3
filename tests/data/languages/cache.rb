require 'json'

module Store
  VERSION = '1.0'

  class Cache
    def initialize(path)
      @path = path
    end

    def self.load(path)
      new(JSON.parse(File.read(path)))
    end
  end
end
