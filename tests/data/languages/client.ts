import type { Options } from './options';

export interface Reply {
  status: number;
}

export type Handler = (reply: Reply) => void;

export class Client {
  constructor(private options: Options) {}

  async send(body: string): Promise<Reply> {
    return fetchReply(this.options, body);
  }
}
